"""`qstar view` (in-process; the server's blocking loop is replaced by one real request)."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

from qstar.cli.main import main
from qstar.viewer import ViewerServer


@pytest.fixture
def one_request(monkeypatch):
    """Instead of serving forever: fetch the listing once, then stop as Ctrl+C would."""
    seen: dict = {}

    def serve_once(self):
        self.start()  # a background thread; the command's close() stops it
        with urllib.request.urlopen(self.url + "api/trees", timeout=10) as resp:
            seen["rows"] = json.loads(resp.read())
        raise KeyboardInterrupt

    monkeypatch.setattr(ViewerServer, "serve_forever", serve_once)
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    return seen, opened


def test_view_prints_the_url_serves_the_tree_and_stops_cleanly(capsys, solved_tree_file, one_request):
    seen, opened = one_request
    code = main(["view", str(solved_tree_file), "--no-browser"])
    out = capsys.readouterr().out
    assert code == 0
    assert re.search(r"http://127\.0\.0\.1:\d+/", out) and "stopped" in out
    assert [r["id"] for r in seen["rows"]] == ["solved"]
    assert opened == []


def test_view_opens_the_browser_at_the_printed_url(capsys, solved_tree_file, one_request):
    _, opened = one_request
    assert main(["view", str(solved_tree_file)]) == 0
    url = re.search(r"http://127\.0\.0\.1:\d+/", capsys.readouterr().out).group(0)
    assert opened == [url]


def test_view_of_a_run_lists_its_trees(capsys, tmp_path, synthetic_tree_file, one_request):
    seen, _ = one_request
    synthetic_tree_file("runs/r1/trees/a.json", 2, 1)
    synthetic_tree_file("runs/r1/trees/b.json", 2, 1)
    assert main(["view", str(tmp_path / "runs/r1"), "--no-browser"]) == 0
    assert "2 trees in" in capsys.readouterr().out
    assert [r["id"] for r in seen["rows"]] == ["a", "b"]


def test_view_of_a_non_tree_is_one_line_and_exit_2(capsys, tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("[1, 2]")
    assert main(["view", str(bad), "--no-browser"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qstar: error:") and "not a qstar search tree" in err and err.count("\n") == 1
