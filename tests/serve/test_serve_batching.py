"""Requests from concurrent clients share model calls; each is still charged and answered exactly."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx

from qstar.policy.mock import MockPolicy
from qstar.serve.batching import LockedPolicy

PROMPTS = [f"game24: {a} {b} 10 13\n" for a in range(1, 5) for b in range(1, 3)]


def _chat(base_url: str, prompt: str, seed: int) -> httpx.Response:
    body = {"model": "tiny", "messages": [{"role": "user", "content": prompt}], "max_tokens": 8, "seed": seed}
    return httpx.post(f"{base_url}/chat/completions", json=body, timeout=120)


def test_concurrent_requests_are_batched_and_answered_as_if_alone(server, local):
    base_url, app = server
    batcher = app.state.qstar.batcher
    barrier = threading.Barrier(len(PROMPTS))

    def one(i: int) -> httpx.Response:
        barrier.wait()
        return _chat(base_url, PROMPTS[i], seed=7)  # requests batch when their sampling params match

    before = len(batcher.batch_sizes)
    with ThreadPoolExecutor(len(PROMPTS)) as pool:
        responses = list(pool.map(one, range(len(PROMPTS))))
    sizes = batcher.batch_sizes[before:]
    assert sum(sizes) == len(PROMPTS) and max(sizes) > 1  # several clients shared a call
    for i, resp in enumerate(responses):
        expected = local.generate(
            [PROMPTS[i]], num_samples=1, temperature=1.0, max_new_tokens=8, stop=(), seed=7
        )[0][0]
        assert resp.json()["choices"][0]["message"]["content"] == expected.text
        assert resp.json()["usage"]["completion_tokens"] == expected.num_tokens


def test_one_bad_prompt_does_not_fail_its_batch(server):
    base_url, _ = server
    prompts = ["game24: 1 2 3 4\n", "9 " * 300, "game24: 2 3 4 5\n"]  # the middle one is too long
    barrier = threading.Barrier(len(prompts))

    def one(prompt: str) -> int:
        barrier.wait()
        return _chat(base_url, prompt, seed=0).status_code

    with ThreadPoolExecutor(len(prompts)) as pool:
        assert list(pool.map(one, prompts)) == [200, 400, 200]


def test_locked_policy_charges_each_wrapper_only_its_own_calls():
    inner = MockPolicy(default_generation="a b c")
    lock = threading.Lock()
    first, second = LockedPolicy(inner, lock), LockedPolicy(inner, lock)
    first.generate(["p"], num_samples=2)
    second.generate(["p q"], num_samples=1)
    second.score(["p"], [["x y"]])
    assert (first.usage.model_calls, first.usage.tokens_generated, first.usage.tokens_prompt) == (1, 6, 1)
    assert (second.usage.model_calls, second.usage.tokens_generated, second.usage.tokens_scored) == (2, 3, 2)
    assert inner.usage.model_calls == 3


def test_a_small_bounded_load_has_no_errors(base_url):
    """5 clients x 2 requests, mixed plain and reasoning (the full load test is benchmarks/serve_load.py)."""

    def client(c: int) -> list[int]:
        with httpx.Client(base_url=base_url, timeout=120) as http:
            codes = []
            for r in range(2):
                body = {
                    "model": "tiny",
                    "messages": [{"role": "user", "content": "4 9 10 13"}],
                    "max_tokens": 4,
                }
                if (c + r) % 3 == 0:
                    body["reasoning"] = {"mode": "mcts", "budget": 2}
                codes.append(http.post("/chat/completions", json=body).status_code)
            return codes

    with ThreadPoolExecutor(5) as pool:
        assert [code for codes in pool.map(client, range(5)) for code in codes] == [200] * 10
