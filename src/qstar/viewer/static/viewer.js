// qstar tree viewer: shows one saved search tree (schema "qstar.tree/1"), or a picker of trees.
// Rendering is lazy: a node's children enter the DOM only when the node is expanded, and at most
// PAGE of them at a time, so a 10,000-node tree opens as fast as a small one.
"use strict";
(function () {
  const CONFIG = window.QSTAR_VIEWER || {};
  const PAGE = 200; // children rendered per "show more"
  const MAX_EXPAND_ALL = 3000; // "expand all" would put every node in the DOM
  const $ = (id) => document.getElementById(id);

  const v = {
    nodes: [], children: [], chosen: new Set(), open: new Set(), shown: new Map(),
    rows: new Map(), selected: null, query: "", matches: [], matchSet: new Set(), matchAt: -1, order: "id",
  };

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  function fmt(x) {
    if (x === null || x === undefined) return "–";
    if (typeof x !== "number") return String(x);
    const a = Math.abs(x);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return x.toExponential(1);
    return x.toFixed(3);
  }

  function verdict(node) {
    if (node.outcome === null || node.outcome === undefined) return null;
    return node.outcome >= 1 ? "ok" : "bad";
  }

  function message(text) { $("message").textContent = text || ""; }

  // ---- loading -----------------------------------------------------------------------------
  async function getJSON(url) {
    const resp = await fetch(url, { cache: "no-store" });
    if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status}`);
    return resp.json();
  }

  async function start() {
    const params = new URLSearchParams(location.search);
    const treeUrl = params.get("tree") || CONFIG.tree;
    try {
      if (treeUrl) return showTree(await getJSON(treeUrl), treeUrl);
      if (!CONFIG.list) return message("nothing to show: no tree URL given (?tree=URL)");
      const list = await getJSON(CONFIG.list);
      if (list.length === 1) return showTree(await getJSON(list[0].url), list[0].url);
      showPicker(list);
    } catch (err) {
      message(`could not load: ${err.message}`);
      $("heading").textContent = "error";
    }
  }

  function showPicker(list) {
    $("heading").textContent = `${list.length} saved trees`;
    const picker = $("picker");
    picker.hidden = false;
    const table = el("table", "picker");
    const head = table.insertRow();
    for (const h of ["tree", "task", "problem", "method", "nodes", "verdict"]) head.append(el("th", "", h));
    for (const row of list) {
      const tr = table.insertRow();
      const a = el("a", "", row.id || row.name);
      a.href = "?tree=" + encodeURIComponent(row.url);
      tr.insertCell().append(a);
      for (const key of ["task", "problem", "method", "num_nodes"]) tr.insertCell().textContent = row[key] ?? "";
      tr.insertCell().textContent = row.solved === true ? "✓" : row.solved === false ? "✗" : "";
    }
    picker.append(table);
  }

  function showTree(tree, url) {
    if (!tree || !Array.isArray(tree.nodes)) throw new Error(`${url}: not a qstar tree`);
    v.nodes = tree.nodes;
    v.children = v.nodes.map(() => []);
    for (const [i, node] of v.nodes.entries()) {
      if (node.id === undefined) node.id = i;
      if (node.parent !== null && node.parent !== undefined) v.children[node.parent].push(node.id);
    }
    v.chosen = new Set(tree.chosen || []);
    const problem = tree.problem || {};
    const name = [tree.task, problem.text, tree.method].filter(Boolean).join(" · ");
    $("heading").textContent = name || url;
    document.title = `${problem.text || "tree"} · qstar`;
    $("stats").textContent = stats(tree);
    $("tools").hidden = false;
    $("legend").hidden = false;
    $("panel").hidden = false;
    $("expand").disabled = v.nodes.length > MAX_EXPAND_ALL;
    if ($("expand").disabled) $("expand").title = `more than ${MAX_EXPAND_ALL} nodes: expand subtrees one by one`;
    showChosen();
  }

  function stats(tree) {
    const n = v.nodes.length;
    const expansions = v.nodes.filter((x) => x.expanded).length;
    const chosen = tree.chosen || [];
    const last = v.nodes[chosen[chosen.length - 1]];
    const verdictText = !last ? "no chosen path"
      : verdict(last) === "ok" ? "answer verified ✓"
      : verdict(last) === "bad" ? "answer wrong ✗" : "no verdict";
    return `${n} nodes · ${expansions} expanded · chosen path ${Math.max(chosen.length - 1, 0)} steps · ${verdictText}`;
  }

  // ---- rendering ---------------------------------------------------------------------------
  function sortedChildren(id) {
    const kids = v.children[id];
    if (v.order === "id") return kids;
    const key = (c) => v.nodes[c][v.order] ?? -Infinity;
    return kids.slice().sort((a, b) => key(b) - key(a) || a - b);
  }

  function badge(parent, label, value, cls) {
    const b = el("span", "badge" + (cls ? " " + cls : ""), `${label} ${fmt(value)}`);
    parent.append(b);
    return b;
  }

  function rowClass(id) {
    const node = v.nodes[id];
    let cls = "row";
    if (v.chosen.has(id)) cls += " chosen";
    if (id === v.selected) cls += " selected";
    if (v.matchSet.has(id)) cls += " match";
    if (node.terminal) cls += " terminal";
    return cls;
  }

  function renderRow(id) {
    const node = v.nodes[id];
    const li = el("li");
    li.dataset.id = id;
    const row = el("div", rowClass(id));
    const kids = v.children[id].length;
    row.append(el("span", "tog", kids ? (v.open.has(id) ? "▾" : "▸") : "·"));
    row.append(el("span", "step", node.parent === null ? (node.state || "root").trim() : node.step));
    const badges = el("span", "badges");
    if (node.parent !== null) badge(badges, "p", node.prior);
    if (node.value !== null && node.value !== undefined) {
      const b = badge(badges, "v", node.value);
      const hue = 120 * Math.min(1, Math.max(0, node.value));
      b.style.background = `hsl(${hue}, 65%, 88%)`;
    }
    if (node.q !== null && node.q !== undefined) badge(badges, "Q", node.q);
    if (node.visits) badges.append(el("span", "badge", `N ${node.visits}`));
    const verdictCls = verdict(node);
    if (verdictCls) badges.append(el("span", "verdict " + verdictCls, verdictCls === "ok" ? "✓" : "✗"));
    for (const flag of node.flags || []) badges.append(el("span", "flag", flag));
    if (kids) badges.append(el("span", "kids", `${kids} ${kids === 1 ? "child" : "children"}`));
    row.append(badges);
    li.append(row);
    if (kids && v.open.has(id)) li.append(renderChildren(id));
    v.rows.set(id, li);
    return li;
  }

  function renderChildren(id) {
    const ul = el("ul");
    const kids = sortedChildren(id);
    const shown = Math.min(kids.length, v.shown.get(id) || PAGE);
    for (const c of kids.slice(0, shown)) ul.append(renderRow(c));
    if (shown < kids.length) {
      const more = el("li", "more", `show ${Math.min(PAGE, kids.length - shown)} more of ${kids.length - shown} hidden children`);
      more.dataset.more = id;
      ul.append(more);
    }
    return ul;
  }

  function rerender(id) {
    const old = v.rows.get(id);
    if (old && old.isConnected) old.replaceWith(renderRow(id));
  }

  function renderAll() {
    v.rows.clear();
    $("tree").replaceChildren(renderRow(0));
  }

  function setOpen(id, open) {
    if (open === v.open.has(id) || !v.children[id].length) return;
    if (open) v.open.add(id); else v.open.delete(id);
    rerender(id);
  }

  // Open every ancestor of `id` (and page far enough into each child list) so its row exists.
  function reveal(id) {
    const path = [];
    for (let a = v.nodes[id].parent; a !== null && a !== undefined; a = v.nodes[a].parent) path.push(a);
    path.reverse();
    let top = null; // the highest ancestor whose subtree changes: re-rendered once
    for (const [i, a] of path.entries()) {
      const child = i + 1 < path.length ? path[i + 1] : id;
      const pos = sortedChildren(a).indexOf(child);
      const needMore = pos >= (v.shown.get(a) || PAGE);
      if (!v.open.has(a) || needMore) {
        v.open.add(a);
        if (needMore) v.shown.set(a, pos + 1);
        if (top === null) top = a;
      }
    }
    if (top !== null) rerender(top);
    return v.rows.get(id);
  }

  // ---- selection and side panel ------------------------------------------------------------
  function select(id, scroll) {
    const prev = v.rows.get(v.selected);
    v.selected = id;
    if (prev && prev.isConnected) prev.firstChild.className = rowClass(Number(prev.dataset.id));
    const li = reveal(id);
    if (li) {
      li.firstChild.className = rowClass(id);
      if (scroll) li.firstChild.scrollIntoView({ block: "center" });
    }
    showPanel(id);
  }

  function depth(id) {
    let d = 0;
    for (let a = v.nodes[id].parent; a !== null && a !== undefined; a = v.nodes[a].parent) d++;
    return d;
  }

  function showPanel(id) {
    const node = v.nodes[id];
    const panel = $("panel");
    panel.replaceChildren();
    const title = el("h2", "", `node #${id}`);
    title.append(el("span", "muted", ` depth ${depth(id)}${v.chosen.has(id) ? " · on chosen path" : ""}`));
    panel.append(title);
    if (node.step) panel.append(el("p", "panel-step", node.step));
    panel.append(el("h3", "", "state"));
    panel.append(el("pre", "state", node.state ?? ""));
    panel.append(el("h3", "", "scores"));
    const table = el("table", "scores");
    const v_ = verdict(node);
    const rows = [
      ["prior", fmt(node.prior)], ["logprob", fmt(node.logprob)], ["value", fmt(node.value)],
      ["Q", fmt(node.q)], ["visits", String(node.visits ?? "–")], ["terminal", node.terminal ? "yes" : "no"],
      ["verifier", v_ === "ok" ? "correct ✓" : v_ === "bad" ? `wrong ✗ (${fmt(node.outcome)})` : "–"],
      ["expanded", node.expanded ? "yes" : "no"], ["children", String(v.children[id].length)],
      ["flags", (node.flags || []).join(", ") || "–"], ["key", node.key ?? "–"],
    ];
    for (const [k, val] of Object.entries(node.extra || {})) {
      rows.push([k, Number.isInteger(val) ? String(val) : typeof val === "number" ? fmt(val) : JSON.stringify(val)]);
    }
    for (const [k, val] of rows) {
      const tr = table.insertRow();
      tr.insertCell().textContent = k;
      tr.insertCell().textContent = val;
    }
    panel.append(table);
    panel.append(el("h3", "", "path from the root"));
    const ol = el("ol", "path");
    const path = [];
    for (let a = id; a !== null && a !== undefined; a = v.nodes[a].parent) path.push(a);
    for (const a of path.reverse()) {
      const li = el("li", a === id ? "here" : "", v.nodes[a].step || "(root)");
      li.dataset.goto = a;
      ol.append(li);
    }
    panel.append(ol);
  }

  // ---- search ------------------------------------------------------------------------------
  function search(query) {
    const q = query.trim().toLowerCase();
    const old = v.matchSet;
    v.query = query;
    v.matches = [];
    if (/^#\d+$/.test(q)) {
      const id = Number(q.slice(1));
      if (id < v.nodes.length) v.matches.push(id);
    } else if (q) {
      for (const node of v.nodes) {
        const text = (node.step || "") + " " + (node.flags || []).join(" ");
        if (text.toLowerCase().includes(q)) v.matches.push(node.id);
      }
    }
    v.matchSet = new Set(v.matches);
    v.matchAt = -1;
    for (const id of new Set([...old, ...v.matchSet])) {
      const li = v.rows.get(id);
      if (li && li.isConnected) li.firstChild.className = rowClass(id);
    }
    $("count").textContent = q ? `${v.matches.length} match${v.matches.length === 1 ? "" : "es"}` : "";
  }

  function step(delta) {
    if (!v.matches.length) return;
    v.matchAt = (v.matchAt + delta + v.matches.length) % v.matches.length;
    select(v.matches[v.matchAt], true);
    $("count").textContent = `${v.matchAt + 1} / ${v.matches.length}`;
  }

  // ---- buttons -----------------------------------------------------------------------------
  function showChosen() {
    v.open = new Set([0]);
    v.shown.clear();
    const chosen = [...v.chosen];
    renderAll();
    if (chosen.length > 1) reveal(chosen[chosen.length - 1]);
  }

  function wire() {
    $("tree").addEventListener("click", (ev) => {
      const more = ev.target.closest("li.more");
      if (more) {
        const id = Number(more.dataset.more);
        v.shown.set(id, (v.shown.get(id) || PAGE) + PAGE);
        return rerender(id);
      }
      const li = ev.target.closest("li[data-id]");
      if (!li) return;
      const id = Number(li.dataset.id);
      if (ev.target.classList.contains("tog")) setOpen(id, !v.open.has(id));
      else select(id, false);
    });
    $("tree").addEventListener("dblclick", (ev) => {
      const li = ev.target.closest("li[data-id]");
      if (li && !ev.target.classList.contains("tog")) setOpen(Number(li.dataset.id), !v.open.has(Number(li.dataset.id)));
    });
    $("panel").addEventListener("click", (ev) => {
      const item = ev.target.closest("[data-goto]");
      if (item) select(Number(item.dataset.goto), true);
    });
    let timer = null;
    $("search").addEventListener("input", (ev) => {
      clearTimeout(timer);
      timer = setTimeout(() => search(ev.target.value), 150);
    });
    $("search").addEventListener("keydown", (ev) => {
      if (ev.key !== "Enter") return;
      clearTimeout(timer);
      if (ev.target.value !== v.query) search(ev.target.value);
      step(ev.shiftKey ? -1 : 1);
    });
    $("next").addEventListener("click", () => step(1));
    $("prev").addEventListener("click", () => step(-1));
    $("order").addEventListener("change", (ev) => { v.order = ev.target.value; v.shown.clear(); renderAll(); });
    $("show-chosen").addEventListener("click", showChosen);
    $("collapse").addEventListener("click", () => { v.open = new Set(); v.shown.clear(); renderAll(); });
    $("expand").addEventListener("click", () => {
      v.open = new Set(v.nodes.filter((n) => v.children[n.id].length).map((n) => n.id));
      renderAll();
    });
  }

  wire();
  start();
})();
