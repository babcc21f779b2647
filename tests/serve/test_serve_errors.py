"""Every request a client can get wrong is a 4xx with an OpenAI-style error object, never a 500
and never a hung worker; the optional API key is enforced."""

from __future__ import annotations

import httpx
import openai
import pytest

from qstar.policy.tinygpt.policy import TinyGPTPolicy
from qstar.serve import ServeConfig, create_app, serve_in_thread

USER = [{"role": "user", "content": "4 9 10 13"}]


def _error(resp: httpx.Response, status: int) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()["error"]
    assert set(body) == {"message", "type", "param", "code"} and body["message"]
    return body


@pytest.fixture(scope="module")
def http(base_url):
    with httpx.Client(base_url=base_url, timeout=60) as c:
        yield c


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "tiny"}, "messages"),
        ({"model": "tiny", "messages": []}, "messages"),
        ({"model": "tiny", "messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
        ({"model": "tiny", "messages": USER, "temperature": "hot"}, "temperature"),
        ({"model": "tiny", "messages": USER, "temperature": 7}, "temperature"),
        ({"model": "tiny", "messages": USER, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"model": "tiny", "messages": USER, "n": 5}, "n"),
        ({"model": "tiny", "messages": USER, "max_tokens": 65}, "max_tokens"),
        ({"model": "tiny", "messages": USER, "reasoning": {"mode": "alphago"}}, "reasoning.mode"),
        ({"model": "tiny", "messages": USER, "reasoning": {"budget": 17}}, "reasoning.budget"),
        ({"model": "tiny", "messages": USER, "reasoning": {"budget": 0}}, "reasoning.budget"),
        ({"model": "tiny", "messages": USER, "reasoning": {"depth": 3}}, "reasoning.depth"),
        ({"model": "tiny", "messages": USER, "n": 2, "reasoning": {}}, "n"),
    ],
)
def test_malformed_chat_requests_are_400_with_the_bad_field(http, body, param):
    assert _error(http.post("/chat/completions", json=body), 400)["param"] == param


def test_invalid_json_and_wrong_body_types_are_400(http):
    _error(
        http.post("/chat/completions", content=b"{not json", headers={"content-type": "application/json"}),
        400,
    )
    _error(http.post("/completions", json=["a list"]), 400)
    _error(http.post("/completions", json={"model": "tiny", "prompt": []}), 400)


def test_problems_the_task_cannot_read_are_400(http):
    for reasoning, content in (({"task": "game24"}, "4 9 x 13"), ({"task": "chess"}, "e4"), ({}, "   ")):
        body = {"model": "tiny", "messages": [{"role": "user", "content": content}], "reasoning": reasoning}
        _error(http.post("/chat/completions", json=body), 400)


def test_a_prompt_longer_than_the_model_is_400(http):
    _error(http.post("/completions", json={"model": "tiny", "prompt": "1 " * 400, "max_tokens": 2}), 400)


def test_oversized_bodies_are_413_with_or_without_content_length(http, server):
    limit = server[1].state.qstar.config.max_body_bytes
    big = b'{"model": "tiny", "prompt": "' + b"x" * (limit + 10) + b'"}'
    assert _error(http.post("/completions", content=big), 413)["code"] == "request_too_large"

    def chunks():  # no Content-Length: the limit is enforced while the body streams in
        for i in range(0, len(big), 4096):
            yield big[i : i + 4096]

    _error(http.post("/completions", content=chunks(), headers={"content-type": "application/json"}), 413)


def test_unknown_routes_and_trees_are_404(http):
    _error(http.get("/nothing-here"), 404)
    assert _error(http.get("/trees/tree-0000"), 404)["code"] == "tree_not_found"


def test_the_openai_client_raises_its_usual_errors(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model="tiny", messages=USER, extra_body={"reasoning": {"mode": "alphago"}}
        )
    assert err.value.status_code == 400 and err.value.param == "reasoning.mode"


def test_the_server_still_answers_after_errors(http):
    for _ in range(3):
        http.post("/chat/completions", content=b"{", headers={"content-type": "application/json"})
    ok = http.post("/chat/completions", json={"model": "tiny", "messages": USER, "max_tokens": 2})
    assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["role"] == "assistant"


def test_api_key_is_required_when_configured(tiny_checkpoint):
    app = create_app(TinyGPTPolicy.load(tiny_checkpoint), ServeConfig(model_name="tiny", api_key="s3cret"))
    with serve_in_thread(app) as url:
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=url, api_key="wrong", max_retries=0).models.list()
        assert _error(httpx.get(f"{url}/models"), 401)["code"] == "invalid_api_key"
        good = openai.OpenAI(base_url=url, api_key="s3cret", max_retries=0)
        assert good.models.list().data[0].id == "tiny"
