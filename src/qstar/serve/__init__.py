"""``qstar serve``: an OpenAI-compatible HTTP server with reasoning modes (extra ``[serve]``).

See :mod:`qstar.serve.app` for the API; :func:`create_app` builds it around any policy and
:func:`serve_in_thread` runs it in the background of this process.
"""

from __future__ import annotations

from qstar.errors import require_extra

require_extra("fastapi", "serve")

from qstar.serve.app import create_app  # noqa: E402
from qstar.serve.background import serve_in_thread  # noqa: E402
from qstar.serve.schemas import MODES, ServeConfig  # noqa: E402

__all__ = ["create_app", "serve_in_thread", "ServeConfig", "MODES"]
