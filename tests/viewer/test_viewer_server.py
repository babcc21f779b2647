"""The viewer's page, tree listing and local HTTP server (no browser)."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest

from qstar.errors import ConfigError
from qstar.viewer import TreeSource, ViewerServer, page_html


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read()


def test_page_needs_no_network():
    html = page_html(list_url="api/trees")
    assert not re.search(r"https?://|//cdn|<script[^>]+src=|<link[^>]+href=", html)
    assert "function" in html and ".row.chosen" in html  # the JS and CSS are inlined


def test_page_config_cannot_close_the_script_element():
    html = page_html(tree_url="</script><b>x</b>", title="<i>t</i>")
    assert "<b>" not in html and "<i>" not in html
    assert '"tree": "\\u003c/script>\\u003cb>x\\u003c/b>"' in html


def test_page_for_another_server_points_at_its_tree_url():
    html = page_html(tree_url="/api/trees/abc")
    assert '"tree": "/api/trees/abc"' in html and '"list": null' in html


def test_serves_page_listing_and_tree_bytes(solved_tree_file):
    tree = json.loads(solved_tree_file.read_text())
    with ViewerServer(TreeSource(solved_tree_file)) as server:
        assert server.url == f"http://127.0.0.1:{server.port}/"
        status, ctype, body = get(server.url)
        assert status == 200 and ctype.startswith("text/html") and b"qstar" in body
        status, ctype, body = get(server.url + "api/trees")
        rows = json.loads(body)
        assert status == 200 and ctype == "application/json"
        assert [(r["id"], r["task"], r["problem"], r["method"]) for r in rows] == [
            ("solved", "game24", "1 1 4 6", "blind")
        ]
        assert rows[0]["num_nodes"] == len(tree["nodes"]) and rows[0]["solved"] is True
        status, _, body = get(server.url + rows[0]["url"])
        assert status == 200 and body == solved_tree_file.read_bytes()


def test_unknown_paths_and_path_tricks_are_404(solved_tree_file):
    with ViewerServer(TreeSource(solved_tree_file)) as server:
        for path in ("api/trees/nope", "api/trees/../solved", "api/trees/%2e%2e%2fsolved", "etc/passwd"):
            assert get(server.url + path)[0] == 404, path


def test_run_folder_lists_its_trees_and_picks_up_new_ones(tmp_path, synthetic_tree_file):
    synthetic_tree_file("run/trees/round1.json", 2, 2)
    synthetic_tree_file("run/trees/round2/p7.json", 3, 1)
    (tmp_path / "run/trees/notes.json").write_text('{"not": "a tree"}')
    (tmp_path / "run/metrics.jsonl").write_text('{"round": 1}\n')
    source = TreeSource(tmp_path / "run")
    assert [r["id"] for r in source.summaries()] == ["round1", "round2/p7"]
    assert [r["num_nodes"] for r in source.summaries()] == [7, 4]
    assert source.path_of("notes") is None
    with ViewerServer(source) as server:
        synthetic_tree_file("run/trees/round3.json", 1, 1)
        rows = json.loads(get(server.url + "api/trees")[2])
        assert [r["id"] for r in rows] == ["round1", "round2/p7", "round3"]
        assert json.loads(get(server.url + "api/trees/round2/p7")[2])["problem"]["text"] == "3^1"


def test_a_file_that_is_not_a_tree_is_refused(tmp_path):
    bad = tmp_path / "result.json"
    bad.write_text('{"answer": 24}')
    with pytest.raises(ConfigError, match="not a qstar search tree"):
        TreeSource(bad)


def test_a_folder_without_trees_is_refused_with_a_hint(tmp_path):
    (tmp_path / "run" / "trees").mkdir(parents=True)
    with pytest.raises(ConfigError, match="--save-tree"):
        TreeSource(tmp_path / "run")


def test_a_busy_port_is_a_config_error(solved_tree_file):
    with ViewerServer(TreeSource(solved_tree_file)) as first, pytest.raises(ConfigError, match="--port"):
        ViewerServer(TreeSource(solved_tree_file), port=first.port)
