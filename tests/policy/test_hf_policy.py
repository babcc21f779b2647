"""The Hugging Face backend on tiny random models built here (nothing is downloaded)."""

from __future__ import annotations

import os

import pytest
import torch

pytest.importorskip("transformers")

from qstar.errors import CheckpointError, ConfigError  # noqa: E402
from qstar.policy.hf import HFPolicy  # noqa: E402
from qstar.policy.hf_tiny import TINY_CHAT_TEMPLATE, make_tiny_random_model  # noqa: E402
from qstar.policy.loading import load_policy  # noqa: E402
from qstar.rewards.registry import make_scorer  # noqa: E402
from qstar.rewards.value_head import ValueHeadScorer  # noqa: E402
from qstar.search.registry import run_search, search_names  # noqa: E402
from qstar.tasks.gsm8k import GSM8KTask, reference_steps  # noqa: E402
from qstar.tasks.registry import get_task  # noqa: E402
from qstar.types import Budget  # noqa: E402

PROMPTS = ["game24: 4 9 10 13\n", "Question: Tom has 3 apples.\nAnswer:\n", "x"]


def _corpus() -> list[str]:
    task = GSM8KTask(num_shots=0)
    texts = [p.text + "\n" + "\n".join(reference_steps(p)) for p in task.problems("train")[:200]]
    return texts + ["game24: 4 9 10 13\n10 - 4 = 6 (left: 6 9 13)\n13 - 9 = 4 (left: 4 6)\n"] * 5


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory) -> str:
    return str(make_tiny_random_model(tmp_path_factory.mktemp("hf") / "gpt2", _corpus(), arch="gpt2"))


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("hf") / "llama"
    return str(make_tiny_random_model(path, _corpus(), arch="llama", chat_template=TINY_CHAT_TEMPLATE))


@pytest.fixture(scope="module")
def gpt2(gpt2_dir) -> HFPolicy:
    return load_policy(f"hf:{gpt2_dir}", device="cpu")


@pytest.fixture(scope="module")
def llama(llama_dir) -> HFPolicy:
    return HFPolicy.load(llama_dir, device="cpu")


def _full_forward_logprob(policy: HFPolicy, prompt: str, continuation: str) -> float:
    """Independent oracle: one unpadded forward pass over prompt + continuation, no cache."""
    p_ids = policy._encode_prompt(prompt)
    c_ids = policy._encode_continuation(prompt, p_ids, continuation)
    with torch.no_grad():
        logits = policy.model(input_ids=torch.tensor([p_ids + c_ids])).logits[0].float()
    logp = torch.log_softmax(logits, dim=-1)
    return sum(logp[len(p_ids) - 1 + k, t].item() for k, t in enumerate(c_ids))


# -- loading -----------------------------------------------------------------------------------
def test_a_name_that_is_not_a_local_directory_is_never_downloaded(tmp_path):
    with pytest.raises(CheckpointError, match="never downloads"):
        load_policy("hf:gpt2")
    with pytest.raises(CheckpointError, match="config.json"):
        load_policy(f"hf:{tmp_path}")
    with pytest.raises(ConfigError):
        load_policy("hf:")


def test_loading_sets_offline_mode_and_picks_the_device(gpt2_dir):
    policy = HFPolicy.load(gpt2_dir)
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    assert policy.device.type == ("cuda" if torch.cuda.is_available() else "cpu")


# -- score -------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_score_equals_an_unpadded_forward_pass(arch, request):
    policy = request.getfixturevalue(arch)
    continuations = [["10 - 4 = 6 (left: 6 9 13)\n", "x"], ["She has 3 + 4 = <<3+4=7>>7.\n"], ["y z", ""]]
    got = policy.score(PROMPTS, continuations)
    for prompt, conts, row in zip(PROMPTS, continuations, got, strict=True):
        for c, value in zip(conts, row, strict=True):
            expected = _full_forward_logprob(policy, prompt, c) if c else 0.0
            assert value == pytest.approx(expected, abs=1e-3)


def test_score_runs_each_prompt_once_and_shares_its_cache(gpt2):
    shapes = []
    hook = gpt2.model.register_forward_hook(
        lambda m, args, kwargs, out: shapes.append(kwargs["input_ids"].shape), with_kwargs=True
    )
    try:
        gpt2.score(PROMPTS[:2], [["a", "bb", "ccc"], ["d", "ee", "fff"]])
    finally:
        hook.remove()
    prompt_len = max(len(gpt2._encode_prompt(p)) for p in PROMPTS[:2])
    assert shapes[0] == (2, prompt_len)  # the prefill: one row per prompt, not per candidate
    assert len(shapes) == 2 and shapes[1][0] == 6  # then all six candidates in one batch


def test_score_counts_tokens(gpt2):
    before = gpt2.usage.snapshot()
    gpt2.score(["x"], [["y z", ""]])
    assert gpt2.usage.model_calls == before.model_calls + 1
    expected = len(gpt2._encode_continuation("x", gpt2._encode_prompt("x"), "y z"))
    assert gpt2.usage.tokens_scored - before.tokens_scored == expected


# -- generate ----------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_greedy_generation_equals_transformers_generate(arch, request):
    policy = request.getfixturevalue(arch)
    rows = policy.generate(PROMPTS, num_samples=2, temperature=0, max_new_tokens=10, stop=())
    for prompt, row in zip(PROMPTS, rows, strict=True):
        ids = policy._encode_prompt(prompt)
        out = policy.model.generate(
            torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=10,
            do_sample=False,
            pad_token_id=policy.pad_id,
        )
        expected = policy.tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True)
        assert row[0].text == row[1].text == expected


def test_samples_do_not_depend_on_batching(gpt2):
    together = gpt2.generate(PROMPTS, num_samples=3, temperature=1.0, max_new_tokens=8, seed=7)
    alone = gpt2.generate(PROMPTS[1:2], num_samples=3, temperature=1.0, max_new_tokens=8, seed=7)
    assert [g.text for g in together[1]] == [g.text for g in alone[0]]
    assert [g.logprob for g in together[1]] == pytest.approx([g.logprob for g in alone[0]], abs=1e-4)
    assert len({g.text for g in together[0]}) > 1  # samples differ from each other


def test_copies_of_a_prompt_continue_its_samples(gpt2):
    """Sibling paths at one state (the same prompt twice in a call) must not collapse into one."""
    pair = gpt2.generate(["x", "x"], num_samples=1, temperature=1.0, max_new_tokens=6, seed=2)
    four = gpt2.generate(["x"], num_samples=2, temperature=1.0, max_new_tokens=6, seed=2)
    assert [row[0].text for row in pair] == [g.text for g in four[0]]
    assert pair[0][0].text != pair[1][0].text


def test_generated_logprob_is_the_score_of_the_text(gpt2):
    prompt = "game24: 4 9 10 13\n"
    rows = gpt2.generate([prompt], num_samples=16, temperature=1.0, max_new_tokens=6, seed=3, stop=())
    # Only texts that re-tokenize to the generated tokens can be compared (a random model may
    # emit bytes that are not valid UTF-8 on their own).
    same = [
        g for g in rows[0] if len(gpt2._encode_continuation(prompt, gpt2._encode_prompt(prompt), g.text)) == 6
    ]
    assert same
    for g in same:
        assert g.logprob == pytest.approx(_full_forward_logprob(gpt2, prompt, g.text), abs=1e-3)


@pytest.mark.parametrize("stop", [("\n",), (" ", "e"), ("a",)])
def test_a_step_never_contains_a_stop_string(gpt2, stop):
    rows = gpt2.generate(PROMPTS, num_samples=4, temperature=1.0, max_new_tokens=24, stop=stop, seed=5)
    for g in (g for row in rows for g in row):
        assert not any(s in g.text for s in stop)
        assert g.num_tokens <= 24


def test_generation_is_bounded_and_counted(gpt2):
    before = gpt2.usage.snapshot()
    rows = gpt2.generate(["x"], num_samples=2, temperature=1.0, max_new_tokens=5, stop=(), seed=1)
    assert all(g.num_tokens <= 5 for g in rows[0])
    assert gpt2.usage.tokens_generated - before.tokens_generated == sum(g.num_tokens for g in rows[0])
    with pytest.raises(ConfigError):
        gpt2.generate(["x"], num_samples=0)


def test_chat_template_wraps_the_prompt_as_a_user_turn(llama, gpt2):
    assert llama.use_chat_template and not gpt2.use_chat_template
    assert llama._prompt_text("hi") == "<|user|>\nhi<|end|>\n<|assistant|>\n"
    ids = llama._encode_prompt("hi")
    assert llama.tokenizer.decode(ids) == "<|user|>\nhi<|end|>\n<|assistant|>\n"
    assert len(llama.generate(["hi"], num_samples=2, max_new_tokens=4, seed=0)[0]) == 2


def test_prompt_longer_than_the_model_is_an_error(gpt2):
    with pytest.raises(ConfigError, match="longer than"):
        gpt2.generate(["word " * 2000], max_new_tokens=1)


# -- value and scorers -------------------------------------------------------------------------
def test_no_value_head_so_auto_scorer_falls_back(gpt2):
    assert gpt2.has_value_head is False
    with pytest.raises(NotImplementedError):
        gpt2.value(["x"])
    assert not isinstance(make_scorer("auto", get_task("game24"), gpt2), ValueHeadScorer)
    # No value head and no test-time verifier: the model itself is asked as a judge (ToT).
    assert type(make_scorer("auto", get_task("gsm8k"), gpt2)).__name__ == "JudgeScorer"


def test_token_logprobs_agree_with_score(gpt2):
    text = "game24: 4 9 10 13\n"
    tokens = gpt2.token_logprobs(text)
    assert "".join(t for t, _, _ in tokens) == text
    assert tokens[0][1] is None
    head = tokens[0][0]
    assert sum(lp for _, lp, _ in tokens[1:]) == pytest.approx(
        gpt2.score([head], [[text[len(head) :]]])[0][0], abs=1e-3
    )


# -- every search and scorer on GSM8K ----------------------------------------------------------
@pytest.fixture(scope="module")
def gsm8k() -> GSM8KTask:
    return GSM8KTask(num_shots=1)


@pytest.mark.parametrize(
    "search", [s for s in search_names() if s not in ("blind", "stream", "scan", "scan_teacher")]
)
def test_every_search_runs_on_gsm8k_with_a_hf_model(gsm8k, gpt2, search):
    from qstar.rewards.judge import JudgeScorer

    scorer = JudgeScorer(gsm8k, gpt2, num_samples=1, max_new_tokens=4)
    sampled = {"num_samples": 2, "max_new_tokens": 16}
    knobs = {"greedy": {"max_new_tokens": 16}, "self_consistency": sampled, "best_of_n": sampled}.get(
        search, {}
    )
    problem = gsm8k.problems("test")[0]
    result = run_search(search, problem, gsm8k, gpt2, scorer, Budget(max_expansions=2), seed=0, **knobs)
    assert 1 <= result.cost.expansions <= 2 and result.cost.model_calls >= 1
    assert result.tree is not None and result.solved in (True, False)


def test_scorers_value_gsm8k_states_with_a_hf_model(gsm8k, gpt2, tiny_checkpoint):
    from qstar.rewards.rollout import RolloutScorer

    problem = min(gsm8k.problems("test"), key=lambda p: len(p.text))
    states = [gsm8k.initial_state(problem), gsm8k.replay(problem, ["She has 2 + 3 = <<2+3=5>>5."])]
    judge = make_scorer("judge", gsm8k, gpt2)
    labels = RolloutScorer(gsm8k, gpt2, num_rollouts=2, max_new_tokens=8, allow_ground_truth=True)
    short = GSM8KTask(num_shots=0)
    prm = make_scorer(f"prm:{tiny_checkpoint}", short, gpt2)  # a tiny-GPT PRM next to an HF policy
    for scorer, task in ((judge, gsm8k), (labels, gsm8k), (prm, short)):
        values = scorer.value([task.replay(problem, [s.text for s in st.steps]) for st in states])
        assert len(values) == 2 and all(0.0 <= v <= 1.0 for v in values)
