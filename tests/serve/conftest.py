"""A qstar server on 127.0.0.1 (free port) around a random tiny GPT, and clients for it."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
openai = pytest.importorskip("openai")

from qstar.policy.tinygpt.policy import TinyGPTPolicy  # noqa: E402
from qstar.serve import ServeConfig, create_app, serve_in_thread  # noqa: E402

#: Small limits so the error paths are cheap to reach.
CONFIG = ServeConfig(
    model_name="tiny", max_budget=16, default_budget=4, max_n=4, max_tokens=64, max_body_bytes=20_000
)


@pytest.fixture(scope="module")
def local(tiny_checkpoint) -> TinyGPTPolicy:
    """The same model as the server's, called directly: the oracle for what the server returns."""
    return TinyGPTPolicy.load(tiny_checkpoint)


@pytest.fixture(scope="module")
def server(tiny_checkpoint):
    """``(base_url, app)`` of a running server; stopped after the module."""
    app = create_app(TinyGPTPolicy.load(tiny_checkpoint), CONFIG)
    with serve_in_thread(app) as url:
        yield url, app


@pytest.fixture(scope="module")
def base_url(server) -> str:
    return server[0]


@pytest.fixture(scope="module")
def client(base_url):
    with openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=120) as c:
        yield c
