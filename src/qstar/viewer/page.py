"""The viewer page: one self-contained HTML document, its CSS and JavaScript inlined.

Nothing is fetched from the network: the page needs only the tree JSON (and, when it shows a
picker, the tree listing), both from the server that serves the page.
"""

from __future__ import annotations

import json
import re
from importlib import resources

__all__ = ["page_html"]


def _asset(name: str) -> str:
    return resources.files("qstar.viewer").joinpath("static", name).read_text(encoding="utf-8")


def page_html(
    *, tree_url: str | None = None, list_url: str | None = None, title: str = "qstar tree viewer"
) -> str:
    """The viewer page for one tree (``tree_url``) or a picker over a listing (``list_url``).

    URLs are resolved against the page's own URL. A ``?tree=URL`` query parameter overrides
    ``tree_url``, so a picker links to ``?tree=...``. To mount the viewer on another server, serve
    ``page_html(tree_url=f"/api/trees/{tree_id}")`` at ``/trees/{tree_id}`` and the tree's JSON
    (schema ``qstar.tree/1``) at that URL. The listing is a JSON list of rows with at least
    ``url`` and ``name`` (see :meth:`qstar.viewer.TreeSource.summaries`).
    """
    config = {"tree": tree_url, "list": list_url, "title": title}
    # "<" escaped so no string in the config can close the <script> element.
    config_js = json.dumps(config).replace("<", "\\u003c")
    title_html = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    parts = {"TITLE": title_html, "CSS": _asset("viewer.css"), "CONFIG": config_js, "JS": _asset("viewer.js")}
    # One pass, so text inserted for one placeholder is never taken for another.
    return re.sub(r"/\*(TITLE|CSS|CONFIG|JS)\*/", lambda m: parts[m.group(1)], _asset("index.html"))
