"""Self-hosted, offline viewer of saved search trees (``qstar view``).

- :class:`TreeSource`: the trees of one file or of a run (``runs/<name>/trees``).
- :class:`ViewerServer`: a local ``http.server`` on 127.0.0.1 serving the page and the trees.
- :func:`page_html`: the page itself (CSS and JS inlined), to mount on another server.

The page renders lazily: only the children of expanded nodes are in the DOM, so a tree of
10,000 nodes opens as fast as one of ten.
"""

from qstar.viewer.page import page_html
from qstar.viewer.server import ViewerServer
from qstar.viewer.sources import TreeSource, tree_summary

__all__ = ["page_html", "TreeSource", "ViewerServer", "tree_summary"]
