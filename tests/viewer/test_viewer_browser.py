"""The viewer page in a real browser: Playwright driving Debian's headless Chromium.

Saves a screenshot to test-artifacts/viewer.png. Skips only when /usr/bin/chromium is missing
(.ci/run installs it with apt-get where it can).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from qstar.viewer import TreeSource, ViewerServer

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="browser test needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run does)",
)


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory):
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="needs playwright (pip install 'qstar[dev]')"
    )
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),  # a fresh profile every run
            executable_path=str(CHROMIUM),
            args=ARGS,
            headless=True,
            viewport={"width": 1400, "height": 800},
        )
        yield context
        context.close()


@pytest.fixture
def open_viewer(browser_context):
    """``open(path) -> (page, seconds)``: serve ``path``, load the page, wait for the tree."""
    servers: list[ViewerServer] = []
    pages = []

    def open_(path: Path, ready: str = ".row.chosen"):
        server = ViewerServer(TreeSource(path)).start()
        servers.append(server)
        page = browser_context.new_page()
        pages.append(page)
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        start = time.perf_counter()
        page.goto(server.url)
        page.wait_for_selector(ready, timeout=10_000)
        assert errors == []
        return page, time.perf_counter() - start

    yield open_
    for page in pages:
        page.close()
    for server in servers:
        server.close()


def row(page, node_id: int):
    return page.locator(f'li[data-id="{node_id}"] > .row')


def test_chosen_path_panel_and_search(open_viewer, solved_tree_file):
    tree = json.loads(solved_tree_file.read_text())
    page, _ = open_viewer(solved_tree_file)

    # The chosen path is highlighted: exactly its rows, root first, and the solution verified.
    chosen_ids = page.eval_on_selector_all(".row.chosen", "rows => rows.map(r => +r.parentNode.dataset.id)")
    assert chosen_ids == tree["chosen"]
    assert row(page, tree["chosen"][-1]).locator(".verdict.ok").count() == 1
    assert "answer verified" in page.text_content("#stats")

    # Clicking a node fills the side panel with its full state and scores.
    node = next(n for n in tree["nodes"] if n["parent"] == 0 and n["id"] not in tree["chosen"])
    row(page, node["id"]).locator(".step").click()
    assert page.text_content("#panel h2").startswith(f"node #{node['id']}")
    assert page.text_content("#panel pre.state") == node["state"]
    assert f"{node['prior']:.3f}" in page.text_content("#panel table.scores")
    assert "selected" in row(page, node["id"]).get_attribute("class")

    # Searching step text counts every match (counted here independently) and jumps to the first.
    expected = [n["id"] for n in tree["nodes"] if n["step"] and "= 24" in n["step"]]
    page.fill("#search", "= 24")
    page.wait_for_function("document.getElementById('count').textContent.includes('match')")
    assert page.text_content("#count") == f"{len(expected)} matches"
    page.press("#search", "Enter")
    assert page.text_content("#count") == f"1 / {len(expected)}"
    assert page.text_content("#panel h2").startswith(f"node #{expected[0]}")
    assert row(page, expected[0]).is_visible()

    # Back to the chosen path; its last node is the verified answer.
    page.click("#show-chosen")
    row(page, tree["chosen"][-1]).locator(".step").click()
    assert "correct ✓" in page.text_content("#panel table.scores")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "viewer.png"))


def test_collapsing_and_expanding_a_subtree(open_viewer, solved_tree_file):
    tree = json.loads(solved_tree_file.read_text())
    page, _ = open_viewer(solved_tree_file)
    root_children = sum(1 for n in tree["nodes"] if n["parent"] == 0)
    page.click("#collapse")
    assert page.locator("#tree li").count() == 1
    row(page, 0).locator(".tog").click()
    assert page.locator("#tree li").count() == 1 + root_children
    row(page, 0).locator(".tog").click()
    assert page.locator("#tree li").count() == 1


def test_ten_thousand_nodes_load_fast_and_only_open_subtrees_are_in_the_dom(open_viewer, synthetic_tree_file):
    path = synthetic_tree_file("big.json", 10, 4)  # 11,111 nodes
    page, seconds = open_viewer(path)
    assert "11111 nodes" in page.text_content("#stats")
    assert seconds < 3.0
    # Root and the chosen path's three inner nodes are open: root + 4 x 10 children.
    assert page.locator("#tree li").count() == 41
    assert page.evaluate("document.getElementsByTagName('*').length") < 1000
    row(page, 1).locator(".tog").click()  # a closed node with 10 children
    assert page.locator("#tree li").count() == 51
    # Searching all 11k nodes reveals a deep match without rendering the others.
    page.fill("#search", "n5555")
    page.press("#search", "Enter")
    assert page.text_content("#panel h2").startswith("node #5555")
    assert page.locator("#tree li").count() <= 51 + 30


def test_a_run_shows_a_picker_that_opens_a_tree(open_viewer, tmp_path, synthetic_tree_file):
    synthetic_tree_file("run/trees/a.json", 2, 2)
    synthetic_tree_file("run/trees/b.json", 3, 2)
    page, _ = open_viewer(tmp_path / "run", ready="#picker table")
    assert page.locator("#picker a").all_text_contents() == ["a", "b"]
    page.click("#picker a >> text=b")
    page.wait_for_selector(".row.chosen")
    assert "13 nodes" in page.text_content("#stats")
