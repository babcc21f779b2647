"""Run the server in a background thread of this process (tests, benchmarks, notebooks).

    with serve_in_thread(create_app(policy)) as base_url:   # "http://127.0.0.1:<free port>/v1"
        client = openai.OpenAI(base_url=base_url, api_key="unused")

The port is chosen by the operating system (bind to port 0), so parallel runs never collide.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from qstar.errors import require_extra

__all__ = ["serve_in_thread"]


@contextmanager
def serve_in_thread(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, timeout_s: float = 30.0
) -> Iterator[str]:
    """Start uvicorn on ``host:port`` in a daemon thread; yield ``http://host:port/v1``; stop it."""
    uvicorn = require_extra("uvicorn", "serve")
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="on", access_log=False, timeout_keep_alive=75
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="qstar-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"qstar server did not start on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout_s)
