"""The OpenAI-compatible backend: end to end against qstar's own server, edge cases against
scripted HTTP handlers (httpx.MockTransport: retries, stop strings, missing logprobs)."""

from __future__ import annotations

import json
import threading
import time

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from qstar.errors import ConfigError  # noqa: E402
from qstar.policy.loading import load_policy  # noqa: E402
from qstar.policy.mock import MockScorer  # noqa: E402
from qstar.policy.openai_http import OpenAIBackendError, OpenAIPolicy  # noqa: E402
from qstar.policy.tinygpt.policy import TinyGPTPolicy  # noqa: E402
from qstar.rewards.registry import make_scorer  # noqa: E402
from qstar.search.registry import run_search  # noqa: E402
from qstar.serve import ServeConfig, create_app, serve_in_thread  # noqa: E402
from qstar.tasks.gsm8k import GSM8KTask  # noqa: E402
from qstar.tasks.registry import get_task  # noqa: E402
from qstar.types import Budget  # noqa: E402

PROMPTS = ["game24: 4 9 10 13\n", "game24: 1 2 3 4\n"]


@pytest.fixture(scope="module")
def local(tiny_checkpoint) -> TinyGPTPolicy:
    return TinyGPTPolicy.load(tiny_checkpoint)


@pytest.fixture(scope="module")
def base_url(tiny_checkpoint):
    served = TinyGPTPolicy.load(tiny_checkpoint)
    with serve_in_thread(create_app(served, ServeConfig(model_name="tiny"))) as url:
        yield url


@pytest.fixture
def remote(base_url):
    policy = OpenAIPolicy("tiny", base_url=base_url, timeout_s=120)
    yield policy
    policy.close()


# -- against qstar serve -----------------------------------------------------------------------
@pytest.mark.parametrize("style", ["completion", "chat"])
def test_generate_over_http_equals_the_local_model(base_url, local, style):
    remote = OpenAIPolicy("tiny", base_url=base_url, style=style, timeout_s=120)
    kwargs = {"num_samples": 3, "temperature": 1.0, "max_new_tokens": 10, "stop": ("\n", "5"), "seed": 11}
    got, expected = remote.generate(PROMPTS, **kwargs), local.generate(PROMPTS, **kwargs)
    assert [[g.text for g in row] for row in got] == [[g.text for g in row] for row in expected]
    for row, ref in zip(got, expected, strict=True):
        assert [g.logprob for g in row] == pytest.approx([g.logprob for g in ref], abs=1e-4)
        assert [g.finished for g in row] == [g.finished for g in ref]
    remote.close()


def test_score_over_http_uses_echo_and_equals_the_local_model(remote, local):
    conts = [["10 - 4 = 6 (left: 6 9 13)\n", "", "x"], ["4 * 3 = 12 (left: 1 2 12)\n"]]
    got, expected = remote.score(PROMPTS, conts), local.score(PROMPTS, conts)
    assert [len(row) for row in got] == [3, 1]
    for row, ref in zip(got, expected, strict=True):
        assert row == pytest.approx(ref, abs=1e-4)


def test_usage_is_taken_from_the_server(remote, local):
    before = local.usage.snapshot()
    local.generate(PROMPTS, num_samples=2, temperature=1.0, max_new_tokens=6, seed=2)
    remote.generate(PROMPTS, num_samples=2, temperature=1.0, max_new_tokens=6, seed=2)
    assert remote.usage.tokens_generated == local.usage.tokens_generated - before.tokens_generated
    assert remote.usage.tokens_prompt == local.usage.tokens_prompt - before.tokens_prompt
    assert remote.usage.model_calls == remote.num_requests == 2 and not remote.usage_estimated


def test_a_single_sample_takes_its_token_count_from_usage(remote, local):
    kwargs = {"num_samples": 1, "temperature": 1.0, "max_new_tokens": 9, "stop": (), "seed": 5}
    got, expected = remote.generate(PROMPTS, **kwargs), local.generate(PROMPTS, **kwargs)
    assert [row[0].num_tokens for row in got] == [row[0].num_tokens for row in expected]


def test_a_chat_endpoint_cannot_score(base_url):
    with pytest.raises(OpenAIBackendError, match="cannot score"):
        OpenAIPolicy("tiny", base_url=base_url, style="chat").score(["a"], [["b"]])


@pytest.mark.parametrize(
    ("task_name", "search"),
    [
        ("game24", "tot_bfs"),
        ("game24", "mcts"),
        ("game24", "qstar"),
        ("gsm8k", "greedy"),
    ],
)
def test_a_search_over_http_grows_the_same_tree_as_the_local_model(remote, local, task_name, search):
    task = GSM8KTask(num_shots=0) if task_name == "gsm8k" else get_task(task_name)
    problem = min(task.problems("test"), key=lambda p: len(p.text))
    scorer = make_scorer("verifier", task, None) if task_name == "game24" else MockScorer()
    knobs = {"max_new_tokens": 8} if search == "greedy" else {}  # prompts stay within 256 tokens
    runs = [
        run_search(search, problem, task, p, scorer, Budget(max_expansions=3), seed=4, **knobs)
        for p in (remote, local)
    ]
    assert [n["step"] for n in runs[0].tree.to_json()["nodes"]] == [
        n["step"] for n in runs[1].tree.to_json()["nodes"]
    ]
    assert runs[0].cost.tokens == runs[1].cost.tokens and runs[0].answer == runs[1].answer


def test_load_policy_resolves_openai_specs(base_url):
    policy = load_policy("openai:tiny", base_url=base_url)
    assert isinstance(policy, OpenAIPolicy) and policy.style == "completion" and policy.base_url == base_url
    chat = load_policy("openai-chat:llama3:8b", base_url=base_url)
    assert chat.style == "chat" and chat.model == "llama3:8b"
    with pytest.raises(ConfigError, match="base-url"):
        load_policy("default", base_url=base_url)


# -- scripted servers --------------------------------------------------------------------------
def _completion(
    text: str, tokens: list[tuple[str, float]] | None, *, usage: bool = True, finish: str = "length"
):
    choice = {"index": 0, "text": text, "finish_reason": finish, "logprobs": None}
    if tokens is not None:
        offsets = [sum(len(t) for t, _ in tokens[:i]) for i in range(len(tokens))]
        choice["logprobs"] = {
            "tokens": [t for t, _ in tokens],
            "token_logprobs": [lp for _, lp in tokens],
            "top_logprobs": None,
            "text_offset": offsets,
        }
    body = {"id": "x", "object": "text_completion", "choices": [choice]}
    if usage:
        body["usage"] = {"prompt_tokens": 7, "completion_tokens": len(tokens or []), "total_tokens": 0}
    return body


def _policy(handler, **kwargs) -> OpenAIPolicy:
    kwargs = {"backoff_s": 0.001, "max_backoff_s": 0.01, **kwargs}
    return OpenAIPolicy("m", base_url="http://test/v1", transport=httpx.MockTransport(handler), **kwargs)


def test_a_server_that_ignores_stop_never_leaks_the_stop_string():
    tokens = [("10", -1.0), (" - 4 = 6", -2.0), ("\n", -0.5), ("next", -3.0), (" line", -4.0)]
    sent = []

    def handler(request):
        sent.append(json.loads(request.content))
        return httpx.Response(200, json=_completion("10 - 4 = 6\nnext line", tokens))

    policy = _policy(handler)
    ((gen,),) = policy.generate(["p"], num_samples=1, temperature=1.0, stop=("\n",))
    assert gen.text == "10 - 4 = 6" and gen.finished
    assert gen.logprob == pytest.approx(-3.5) and gen.num_tokens == 3  # through the token holding "\n"
    assert sent[0]["stop"] == ["\n"] and sent[0]["logprobs"] == 1
    assert policy.usage.tokens_generated == 5  # billed: everything the server generated


def test_retries_429_and_5xx_with_backoff_then_succeeds():
    statuses = iter([429, 503, 500])

    def handler(request):
        status = next(statuses, 200)
        if status != 200:
            return httpx.Response(status, headers={"retry-after": "0"}, json={"error": {"message": "busy"}})
        return httpx.Response(200, json=_completion("ok", [("ok", -1.0)], finish="stop"))

    policy = _policy(handler, max_retries=3)
    assert policy.generate(["p"], temperature=1.0)[0][0].text == "ok"
    assert policy.num_retries == 3 and policy.num_requests == 4


def test_gives_up_after_max_retries_and_never_retries_a_400():
    calls = []

    def busy(request):
        calls.append(1)
        return httpx.Response(503, json={"error": {"message": "overloaded"}})

    with pytest.raises(OpenAIBackendError, match="failed after 3 attempts.*overloaded"):
        _policy(busy, max_retries=2).generate(["p"])
    assert len(calls) == 3

    def bad(request):
        calls.append(1)
        return httpx.Response(400, json={"error": {"message": "model not found"}})

    calls.clear()
    with pytest.raises(OpenAIBackendError, match="model not found"):
        _policy(bad, max_retries=5).generate(["p"])
    assert len(calls) == 1


def test_timeouts_are_retried():
    calls = []

    def handler(request):
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200, json=_completion("ok", [("ok", -1.0)], finish="stop"))

    assert _policy(handler).generate(["p"])[0][0].text == "ok" and len(calls) == 2


def test_without_logprobs_or_usage_the_fallbacks_apply():
    def handler(request):
        return httpx.Response(200, json=_completion("eight chars", None, usage=False, finish="stop"))

    policy = _policy(handler)
    rows = policy.generate(["abcd"], num_samples=1, temperature=1.0)
    assert rows[0][0].logprob == 0.0 and rows[0][0].finished
    assert policy.logprobs_available is False and policy.usage_estimated is True
    assert policy.usage.tokens_prompt == 1 and policy.usage.tokens_generated == 3  # 4 characters a token


def test_a_server_that_rejects_logprobs_is_asked_without_them():
    sent = []

    def handler(request):
        body = json.loads(request.content)
        sent.append(body)
        if "logprobs" in body:
            return httpx.Response(400, json={"error": {"message": "logprobs is not supported"}})
        return httpx.Response(200, json=_completion("ok", None, finish="stop"))

    policy = _policy(handler)
    policy.generate(["p"])
    policy.generate(["q"])
    assert ["logprobs" in b for b in sent] == [True, False, False]


def test_a_server_without_n_is_asked_again_for_the_missing_samples():
    asked = []

    def handler(request):
        asked.append(json.loads(request.content)["n"])
        return httpx.Response(200, json=_completion(f"s{len(asked)}", [("s", -1.0)], finish="stop"))

    rows = _policy(handler).generate(["p"], num_samples=3, temperature=1.0)
    assert [g.text for g in rows[0]] == ["s1", "s2", "s3"] and asked == [3, 2, 1]


def test_greedy_sends_one_request_for_all_samples():
    asked = []

    def handler(request):
        asked.append(json.loads(request.content))
        return httpx.Response(200, json=_completion("g", [("g", -1.0)], finish="stop"))

    rows = _policy(handler).generate(["p"], num_samples=4, temperature=0)
    assert [g.text for g in rows[0]] == ["g"] * 4 and len(asked) == 1 and asked[0]["n"] == 1


def test_copies_of_a_prompt_share_one_request():
    asked = []

    def handler(request):
        body = json.loads(request.content)
        asked.append((body["prompt"], body["n"]))
        choices = [
            {"index": i, "text": f"{body['prompt']}{i}", "finish_reason": "stop"} for i in range(body["n"])
        ]
        return httpx.Response(200, json={"choices": choices})

    rows = _policy(handler).generate(["a", "b", "a"], num_samples=2, temperature=1.0)
    assert sorted(asked) == [("a", 4), ("b", 2)]
    assert [[g.text for g in row] for row in rows] == [["a0", "a1"], ["b0", "b1"], ["a2", "a3"]]


def test_concurrent_requests_are_bounded():
    state = {"now": 0, "peak": 0}
    lock = threading.Lock()

    def handler(request):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        return httpx.Response(200, json=_completion("x", [("x", -1.0)], finish="stop"))

    _policy(handler, max_concurrency=3).generate([f"p{i}" for i in range(9)])
    assert state["peak"] == 3


def test_score_needs_echo_logprobs_and_falls_back_to_one_max_token():
    sent = []

    def handler(request):
        body = json.loads(request.content)
        sent.append(body["max_tokens"])
        if body["max_tokens"] == 0:
            return httpx.Response(400, json={"error": {"message": "max_tokens must be at least 1"}})
        # echo of "ab" + "cd" plus one generated token "Z" that must not be counted
        return httpx.Response(
            200, json=_completion("abcdZ", [("ab", None), ("c", -1.0), ("d", -2.0), ("Z", -9.0)])
        )

    policy = _policy(handler)
    assert policy.score(["ab"], [["cd", ""]]) == [[pytest.approx(-3.0), 0.0]]
    assert sent == [0, 1] and policy.usage.tokens_scored == 2

    def no_echo(request):
        return httpx.Response(200, json=_completion("abcd", None))

    with pytest.raises(OpenAIBackendError, match="cannot\\s+score"):
        _policy(no_echo).score(["ab"], [["cd"]])


def test_key_and_url_come_from_the_environment(monkeypatch):
    seen = []
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("QSTAR_API_KEY", "secret")
    monkeypatch.setenv("QSTAR_BASE_URL", "http://elsewhere:9/v1")

    def handler(request):
        seen.append((str(request.url), request.headers.get("authorization")))
        return httpx.Response(200, json=_completion("x", [("x", -1.0)], finish="stop"))

    policy = OpenAIPolicy("m", transport=httpx.MockTransport(handler))
    policy.generate(["p"])
    assert seen == [("http://elsewhere:9/v1/completions", "Bearer secret")]
