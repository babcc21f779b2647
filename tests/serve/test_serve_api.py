"""qstar serve through the stock ``openai`` client: models, chat, completions, streaming, reasoning."""

from __future__ import annotations

import httpx
import pytest

from qstar.tasks.registry import get_task

PROMPT = "game24: 4 9 10 13\n"
MODES = ["system1", "best_of_n", "tot", "mcts", "qstar"]


def test_models_lists_the_served_model(client):
    assert [m.id for m in client.models.list().data] == ["tiny"]


def test_chat_completion_is_what_the_model_generates(client, local):
    resp = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": PROMPT}], max_tokens=12, seed=5, n=2, stop=["\n"]
    )
    expected = local.generate(
        [PROMPT], num_samples=2, temperature=1.0, max_new_tokens=12, stop=("\n",), seed=5
    )[0]
    assert [c.message.content for c in resp.choices] == [g.text for g in expected]
    assert [c.finish_reason for c in resp.choices] == ["stop" if g.finished else "length" for g in expected]
    assert resp.usage.completion_tokens == sum(g.num_tokens for g in expected)
    assert resp.usage.prompt_tokens == len(local._encode_prompt(PROMPT))
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


def test_completion_with_several_prompts_and_logprobs(client, local):
    prompts = [PROMPT, "game24: 1 2 3 4\n"]
    resp = client.completions.create(model="tiny", prompt=prompts, max_tokens=6, temperature=0, logprobs=1)
    expected = local.generate(prompts, num_samples=1, temperature=0, max_new_tokens=6, stop=())
    assert [c.text for c in resp.choices] == [row[0].text for row in expected]
    for choice, row in zip(resp.choices, expected, strict=True):
        assert sum(choice.logprobs.token_logprobs) == pytest.approx(row[0].logprob, abs=1e-4)


def test_completion_echo_returns_prompt_token_logprobs(client, local):
    resp = client.completions.create(model="tiny", prompt=PROMPT + "10", max_tokens=0, echo=True, logprobs=0)
    lp = resp.choices[0].logprobs
    assert resp.choices[0].text == PROMPT + "10"
    assert "".join(lp.tokens) == PROMPT + "10" and lp.text_offset[-1] == len(PROMPT)
    assert lp.token_logprobs[-1] == pytest.approx(local.score([PROMPT], [["10"]])[0][0], abs=1e-4)


def test_streaming_chat_sends_the_same_text_as_non_streaming(client):
    kwargs = {"model": "tiny", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 10, "seed": 3}
    whole = client.chat.completions.create(**kwargs).choices[0].message.content
    chunks = list(
        client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True})
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_streaming_completion(client):
    kwargs = {"model": "tiny", "prompt": PROMPT, "max_tokens": 8, "seed": 9}
    whole = client.completions.create(**kwargs).choices[0].text
    chunks = list(client.completions.create(**kwargs, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == whole


def test_a_stop_string_never_appears_in_the_content(client):
    for seed in range(4):
        resp = client.completions.create(
            model="tiny", prompt=PROMPT, max_tokens=30, seed=seed, stop=["1", " "]
        )
        assert "1" not in resp.choices[0].text and " " not in resp.choices[0].text


@pytest.mark.parametrize("mode", MODES)
def test_reasoning_modes_answer_with_steps_verdict_cost_and_tree(client, base_url, mode):
    resp = client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "4 9 10 13"}],
        extra_body={"reasoning": {"mode": mode, "budget": 3, "task": "game24"}},
    )
    info = resp.model_extra["qstar"]
    assert info["mode"] == mode and info["task"] == "game24" and info["problem"] == "4 9 10 13"
    lines = resp.choices[0].message.content.split("\n")
    assert lines[:-1] == info["steps"]
    assert lines[-1] == (
        f"Answer: {info['answer']}" if info["answer"] is not None else "No final answer reached."
    )
    assert 1 <= info["cost"]["expansions"] <= 3 and info["budget"] == 3
    task = get_task("game24")
    expected_ok = (
        info["answer"] is not None and task.verify(task.parse_problem("4 9 10 13"), info["answer"]).ok
    )
    assert info["verdict"]["ok"] is expected_ok and info["verified"] is expected_ok
    assert resp.usage.completion_tokens == info["cost"]["tokens"]
    tree = httpx.get(f"{base_url}/trees/{info['tree_id']}", timeout=30).json()
    assert tree["schema"] == "qstar.tree/1" and tree["problem"]["text"] == "4 9 10 13"
    assert [tree["nodes"][i]["step"] for i in tree["chosen"][1:]] == info["steps"]


def test_reasoning_stream_sends_one_step_per_chunk(client):
    kwargs = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "4 9 10 13"}],
        "extra_body": {"reasoning": {"mode": "tot", "budget": 3, "seed": 1}},
    }
    whole = client.chat.completions.create(**kwargs)
    chunks = list(client.chat.completions.create(**kwargs, stream=True))
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == whole.choices[0].message.content
    assert len(pieces) == len(whole.model_extra["qstar"]["steps"]) + 1
    assert chunks[-1].model_extra["qstar"]["steps"] == whole.model_extra["qstar"]["steps"]


def test_reasoning_on_a_task_without_verifier_reports_no_verdict(client):
    resp = client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "(12+7)*3-5"}],
        extra_body={"reasoning": {"mode": "best_of_n", "budget": 2, "task": "arith"}},
    )
    info = resp.model_extra["qstar"]
    assert info["task"] == "arith" and info["verdict"] is None and info["verified"] is None


def test_reasoning_through_the_completions_endpoint(client):
    resp = client.completions.create(
        model="tiny", prompt="4 9 10 13", extra_body={"reasoning": {"mode": "mcts", "budget": 2}}
    )
    assert resp.model_extra["qstar"]["search"] == "mcts" and resp.choices[0].text.split("\n")[-1]


def test_tree_page_serves_the_viewer(client, base_url):
    resp = client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "4 9 10 13"}],
        extra_body={"reasoning": {"budget": 2}},
    )
    tree_id = resp.model_extra["qstar"]["tree_id"]
    page = httpx.get(f"{base_url.removesuffix('/v1')}/trees/{tree_id}", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f"/v1/trees/{tree_id}" in page.text
