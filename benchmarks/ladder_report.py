"""The search ladder's report: goals against the issue's targets, text and Markdown tables.

Used by :mod:`benchmarks.search_ladder`; kept apart so the runner reads top to bottom.
"""

from __future__ import annotations

from typing import Any

GPT4_TOT_GAME24 = 0.74  # Yao et al. 2023, Table 2: ToT (b = 5) with GPT-4 on the same 100 puzzles
ANYTIME = ("greedy", "blind", "qstar", "tot_dfs", "mcts")


def goals(results: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cd = results.get("countdown-6", {}).get("ladder", {})
    bon = cd.get("best_of_n", {}).get("budgets", {}).get("64")
    if bon is not None:
        g: dict[str, Any] = {"budget": 64, "best_of_n": bon["success"], "target_ratio": 2.0}
        for name in ("qstar", "mcts"):
            row = cd.get(name, {}).get("budgets", {}).get("64")
            if row is not None:
                g[name] = row["success"]
                g[f"{name}_over_best_of_n"] = (
                    round(row["success"] / bon["success"], 2) if bon["success"] else None
                )
        out["countdown6_search_vs_best_of_n_at_64"] = g
    g24 = results.get("game24", {}).get("ladder", {})
    near = sorted({int(b) for e in g24.values() for b in e["budgets"] if 100 <= int(b) <= 128})
    if near:
        b = str(near[-1])
        rows = {name: entry["budgets"][b]["success"] for name, entry in g24.items()}
        best = max(rows.values())
        out["game24_best_at_100_128_vs_gpt4_tot"] = {
            "budget": int(b),
            "best": sorted(name for name, v in rows.items() if v == best),
            "success": best,
            "all": rows,
            "gpt4_tot": GPT4_TOT_GAME24,
        }
    return out


def tables(results: dict[str, Any], budgets: list[int], *, markdown: bool) -> str:
    lines = []
    for task_name, task_res in results.items():
        ladder = task_res["ladder"]
        for title, fmt in (
            ("success rate", lambda r: f"{r['success']:.0%}"),
            ("mean expansions used", lambda r: f"{r['mean_cost']['expansions']:.1f}"),
            ("seconds per puzzle", lambda r: f"{r['seconds_per_puzzle']:.3f}"),
        ):
            head = f"{task_name} ({task_res['n']} test puzzles): {title} by expansion budget"
            if markdown:
                lines += [f"**{head}**", ""]
                lines.append("| search | " + " | ".join(str(b) for b in budgets) + " |")
                lines.append("|---|" + "---:|" * len(budgets))
                for name, entry in ladder.items():
                    cells = [fmt(entry["budgets"][str(b)]) for b in budgets]
                    lines.append(f"| {name} | " + " | ".join(cells) + " |")
                lines.append("")
            else:
                lines.append(head)
                lines.append(f"{'search':17s}" + "".join(f"{b:>8d}" for b in budgets))
                for name, entry in ladder.items():
                    lines.append(
                        f"{name:17s}" + "".join(f"{fmt(entry['budgets'][str(b)]):>8s}" for b in budgets)
                    )
                lines.append("")
    return "\n".join(lines)


def markdown_report(payload: dict[str, Any], budgets: list[int]) -> str:
    lines = [
        "# Search ladder",
        "",
        f"Model `{payload['model']}`, scorer `auto` (value head), seed {payload['seed']}, "
        f"torch threads {payload['threads']} x {payload['jobs']} process(es). Command: `{payload['command']}` "
        f"({payload['wall_seconds']:.0f} s).",
        "",
        "Knobs scaled with the budget b: best_of_n / self_consistency sample max(1, b // max_steps) "
        "paths; tot_bfs / beam keep beam_width = max(1, (b - 1) // (max_steps - 1)). Anytime searches "
        f"({', '.join(s for s in ANYTIME if s in payload['searches'])}) ran once at the largest budget.",
        "",
        tables(payload["tasks"], budgets, markdown=True),
    ]
    eng = payload.get("engine")
    if eng:
        f, s, n = (
            eng["batched_prefix_shared"],
            eng["batch1_prefix_shared"],
            eng["batch1_one_call_per_candidate"],
        )
        lines += [
            f"**Engine** (mcts, {eng['task']}, {eng['puzzles']} puzzles x {eng['max_expansions']} expansions):",
            "",
            "| configuration | expansions/s | model calls |",
            "|---|---:|---:|",
            f"| batch {f['batch_size']}, prefix-shared batched score | {f['expansions_per_s']} | {f['model_calls']} |",
            f"| batch 1, prefix-shared batched score | {s['expansions_per_s']} | {s['model_calls']} |",
            f"| batch 1, one call per (prompt, candidate) | {n['expansions_per_s']} | {n['model_calls']} |",
            "",
            f"Speedup {eng['speedup']}x (target >= {eng['target_speedup']:.0f}x).",
            "",
        ]
    g = payload.get("goals", {})
    if "countdown6_search_vs_best_of_n_at_64" in g:
        c = g["countdown6_search_vs_best_of_n_at_64"]
        parts = [
            f"{name} {c[name]:.0%} ({c[f'{name}_over_best_of_n']}x)"
            if c.get(f"{name}_over_best_of_n") is not None
            else f"{name} {c[name]:.0%}"
            for name in ("qstar", "mcts")
            if name in c
        ]
        lines.append(
            f"- countdown-6 at 64 expansions: {', '.join(parts)} vs best_of_n {c['best_of_n']:.0%} "
            "(target >= 2x)."
        )
    if "game24_best_at_100_128_vs_gpt4_tot" in g:
        c = g["game24_best_at_100_128_vs_gpt4_tot"]
        lines.append(
            f"- game24 at {c['budget']} expansions: best {', '.join(c['best'])} {c['success']:.0%} "
            f"vs GPT-4 ToT {c['gpt4_tot']:.0%} (Yao et al. 2023, same 100 puzzles)."
        )
    return "\n".join(lines).rstrip() + "\n"
