"""Specification of TinyGPTPolicy: generation, scoring and value behind the Policy protocol."""

import pytest
import torch

from qstar.errors import CheckpointError, ConfigError
from qstar.policy import base
from qstar.policy.tinygpt import policy as policy_module
from qstar.policy.tinygpt.model import GPT, GPTConfig
from qstar.policy.tinygpt.policy import TinyGPTPolicy, load_default_policy
from qstar.policy.tinygpt.tokenizer import Tokenizer

PROMPTS = ["4 9 10 13\n", "1 2\n", "a: 3\nb: 17 + 5 = 22\n", "\n"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer(max_int=50)


@pytest.fixture(scope="module")
def model(tok) -> GPT:
    config = GPTConfig(vocab_size=tok.vocab_size, block_size=48, n_layer=2, n_head=2, n_embd=32)
    net = GPT(config, seed=0)
    # Larger weights than the init give peaked distributions, so greedy decoding has no
    # near-ties that float noise could flip.
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if ".ln_" not in name and not name.startswith("ln_"):
                p.normal_(0.0, 0.25, generator=gen)
    return net.eval()


@pytest.fixture
def policy(model, tok) -> TinyGPTPolicy:
    return TinyGPTPolicy(model, tok)


def reference_decode(model, tok, prompt, max_new_tokens, stop=()):
    """Greedy decoding the slow, obvious way: full forward over the whole sequence each step."""
    ids = [tok.bos_id, *tok.encode(prompt)]
    generated, logprobs, text = [], [], ""
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model(torch.tensor([ids + generated])).logits[0, -1]
            t = int(logits.argmax())
            generated.append(t)
            logprobs.append(float(torch.log_softmax(logits, -1)[t]))
            if t == tok.eos_id:
                break
            text = tok.decode(generated)
            if any(s in text for s in stop):
                text = text[: min(text.find(s) for s in stop if s in text)]
                break
    return text, sum(logprobs), len(generated)


def reference_score(model, tok, prompt, continuation):
    """Sum of token log-probs from one plain forward pass over prompt + continuation."""
    p_ids = [tok.bos_id, *tok.encode(prompt)]
    c_ids = tok.encode(continuation)
    ids = torch.tensor([p_ids + c_ids])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0], -1)
    return sum(float(logp[len(p_ids) - 1 + k, t]) for k, t in enumerate(c_ids))


def flat(gens):
    return [(g.text, g.num_tokens, g.finished) for row in gens for g in row]


def assert_same_generations(a, b):
    assert flat(a) == flat(b)
    for ra, rb in zip(a, b, strict=True):
        for ga, gb in zip(ra, rb, strict=True):
            assert ga.logprob == pytest.approx(gb.logprob, abs=1e-4)


def test_implements_the_policy_protocol(policy):
    assert isinstance(policy, base.Policy)
    assert policy.name == "tinygpt"


def test_greedy_generation_matches_reference_decoding(policy, model, tok):
    gens = policy.generate(PROMPTS, temperature=0, max_new_tokens=12, stop=())
    for prompt, (g,) in zip(PROMPTS, gens, strict=True):
        text, logprob, num_tokens = reference_decode(model, tok, prompt, 12)
        assert (g.text, g.num_tokens) == (text, num_tokens)
        assert g.logprob == pytest.approx(logprob, abs=1e-4)


def test_greedy_is_deterministic(policy):
    a = policy.generate(PROMPTS, temperature=0, max_new_tokens=10)
    b = policy.generate(PROMPTS, temperature=0, max_new_tokens=10, seed=123)
    assert_same_generations(a, b)


@pytest.mark.parametrize("kwargs", [{"temperature": 0}, {"temperature": 0.8, "top_k": 8, "seed": 5}])
def test_generation_with_kv_cache_equals_without(model, tok, kwargs):
    cached = TinyGPTPolicy(model, tok).generate(PROMPTS, num_samples=3, max_new_tokens=10, stop=(), **kwargs)
    uncached = TinyGPTPolicy(model, tok, use_kv_cache=False).generate(
        PROMPTS, num_samples=3, max_new_tokens=10, stop=(), **kwargs
    )
    assert_same_generations(cached, uncached)


@pytest.mark.parametrize("kwargs", [{"temperature": 0}, {"temperature": 1.0, "seed": 11}])
def test_batched_generation_equals_one_prompt_at_a_time(policy, kwargs):
    batched = policy.generate(PROMPTS, num_samples=2, max_new_tokens=10, **kwargs)
    alone = [policy.generate([p], num_samples=2, max_new_tokens=10, **kwargs)[0] for p in PROMPTS]
    assert_same_generations(batched, alone)


def test_chunked_batches_equal_one_batch(model, tok):
    kwargs = {"num_samples": 3, "temperature": 1.0, "max_new_tokens": 8, "seed": 2}
    small = TinyGPTPolicy(model, tok, max_batch_size=2)
    assert_same_generations(
        small.generate(PROMPTS, **kwargs), TinyGPTPolicy(model, tok).generate(PROMPTS, **kwargs)
    )


def test_seeded_sampling_is_reproducible(policy):
    a = policy.generate(PROMPTS, num_samples=4, temperature=1.0, max_new_tokens=8, seed=7)
    b = policy.generate(PROMPTS, num_samples=4, temperature=1.0, max_new_tokens=8, seed=7)
    c = policy.generate(PROMPTS, num_samples=4, temperature=1.0, max_new_tokens=8, seed=8)
    assert_same_generations(a, b)
    assert flat(a) != flat(c)


def test_first_samples_do_not_depend_on_num_samples(policy):
    two = policy.generate(PROMPTS, num_samples=2, temperature=1.0, max_new_tokens=8, seed=3)
    four = policy.generate(PROMPTS, num_samples=4, temperature=1.0, max_new_tokens=8, seed=3)
    assert_same_generations(two, [row[:2] for row in four])


def test_unseeded_sampling_follows_the_policy_seed(model, tok):
    kwargs = {"num_samples": 2, "temperature": 1.0, "max_new_tokens": 8}
    a, b = TinyGPTPolicy(model, tok, seed=1), TinyGPTPolicy(model, tok, seed=1)
    first, second = a.generate(PROMPTS, **kwargs), a.generate(PROMPTS, **kwargs)
    assert flat(first) != flat(second)
    assert_same_generations(first, b.generate(PROMPTS, **kwargs))


def test_top_k_1_sampling_is_greedy(policy):
    greedy = policy.generate(PROMPTS, temperature=0, max_new_tokens=8)
    top1 = policy.generate(PROMPTS, temperature=1.5, top_k=1, max_new_tokens=8, seed=0)
    assert_same_generations(greedy, top1)


def test_stop_string_is_removed_and_its_token_counted(policy, model, tok):
    (full,) = policy.generate(["1 2\n"], temperature=0, max_new_tokens=16, stop=())[0]
    stop = full.text[5:7]  # some two characters the model writes
    expected_text, expected_logprob, expected_tokens = reference_decode(model, tok, "1 2\n", 16, stop=(stop,))
    (g,) = policy.generate(["1 2\n"], temperature=0, max_new_tokens=16, stop=[stop])[0]
    assert g.text == expected_text == full.text[: full.text.find(stop)]
    assert g.finished
    assert g.num_tokens == expected_tokens
    assert g.logprob == pytest.approx(expected_logprob, abs=1e-4)


def test_running_out_of_tokens_is_not_finished(policy):
    (g,) = policy.generate(["1 2\n"], temperature=0, max_new_tokens=3, stop=())[0]
    assert (g.num_tokens, g.finished) == (3, False)
    (g,) = policy.generate(["1 2\n"], temperature=0, max_new_tokens=0)[0]
    assert (g.text, g.logprob, g.num_tokens, g.finished) == ("", 0.0, 0, False)


def test_generation_stops_at_block_size(policy, tok):
    prompt = "1 " * 20 + "\n"  # 41 characters -> 42 tokens with <bos>, block_size 48
    (g,) = policy.generate([prompt], temperature=0, max_new_tokens=30, stop=())[0]
    # Tokens sit at positions 42..48: the last is predicted from position 47, never fed.
    assert (g.num_tokens, g.finished) == (48 - 42 + 1, False)


def test_prompt_longer_than_block_size_is_an_error(policy):
    with pytest.raises(ConfigError, match="block_size"):
        policy.generate(["x" * 60])
    with pytest.raises(ConfigError, match="block_size"):
        policy.score(["x" * 60], [["y"]])


@pytest.mark.parametrize(
    "kwargs",
    [{"num_samples": 0}, {"temperature": -1.0}, {"top_k": 0}, {"max_new_tokens": -1}, {"stop": [""]}],
)
def test_invalid_generation_arguments_raise(policy, kwargs):
    with pytest.raises(ConfigError):
        policy.generate(PROMPTS, **kwargs)


CANDIDATES = [["13 - 9 = 4", "x", "", "10 + 4 = 14 (left: 9 14)"], ["3", "3 + 1"], ["c"], ["7 * 7 = 49\n"]]


def test_score_equals_full_forward_log_probabilities(policy, model, tok):
    scores = policy.score(PROMPTS, CANDIDATES)
    for prompt, cands, row in zip(PROMPTS, CANDIDATES, scores, strict=True):
        for cand, value in zip(cands, row, strict=True):
            assert value == pytest.approx(reference_score(model, tok, prompt, cand), abs=1e-4)
    assert scores[0][2] == 0.0  # the empty continuation


def test_batched_scoring_equals_one_prompt_at_a_time(model, tok):
    batched = TinyGPTPolicy(model, tok).score(PROMPTS, CANDIDATES)
    small = TinyGPTPolicy(model, tok, max_batch_size=2).score(PROMPTS, CANDIDATES)
    alone = [TinyGPTPolicy(model, tok).score([p], [c])[0] for p, c in zip(PROMPTS, CANDIDATES, strict=True)]
    for a, b, c in zip(batched, small, alone, strict=True):
        assert a == pytest.approx(b, abs=1e-4)
        assert a == pytest.approx(c, abs=1e-4)


def record_forwards(monkeypatch) -> list[tuple[tuple[int, ...], bool]]:
    """From now on, each GPT forward pass appends (input shape, whether it ran from a cache)."""
    calls = []
    forward = GPT.forward

    def recording_forward(self, idx, **kwargs):
        calls.append((tuple(idx.shape), kwargs.get("past_key_values") is not None))
        return forward(self, idx, **kwargs)

    monkeypatch.setattr(GPT, "forward", recording_forward)
    return calls


def test_score_runs_each_prompt_once_and_reuses_its_cache(model, tok, monkeypatch):
    calls = record_forwards(monkeypatch)
    prompts = ["4 9 10 13\n", "1 2\n"]
    policy = TinyGPTPolicy(model, tok)
    policy.score(prompts, [["1 + 2", "3 + 4", "5"], ["6 * 7"]])
    # 1) both prompts once, left-padded: 5 + 4 tokens -> (2, 9);
    # 2) the four candidates (at most 5 tokens) from the cache, minus their last token, which is
    #    predicted and never fed.
    assert calls == [((2, 9), False), ((4, 4), True)]
    # Once values were asked for, the last token is fed too, for the value there.
    policy.value_after(["1 2\n"], [["3\n"]])
    calls.clear()
    policy.score(prompts, [["1 + 2", "3 + 4", "5"], ["6 * 7"]])
    assert calls == [((2, 9), False), ((4, 5), True)]


def test_score_at_the_block_edge_does_not_feed_the_last_token(model, tok, monkeypatch):
    policy = TinyGPTPolicy(model, tok)
    policy.value_after(["1 2\n"], [["3\n"]])  # values wanted: score would keep them where they fit
    prompt = "1" * (policy.block_size - 3)  # with <bos>: block - 2 tokens, so 3 more overflow by one
    cand = "2" * 3
    assert len(tok.encode(prompt)) + 1 + len(tok.encode(cand)) == policy.block_size + 1
    # the reference feeds the last token too: score its prefix, then add the last token's logp
    ids = torch.tensor([[tok.bos_id, *tok.encode(prompt + cand)][:-1]])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0], -1)
    c_ids = tok.encode(cand)
    expected = sum(float(logp[ids.shape[1] - len(c_ids) + k, t]) for k, t in enumerate(c_ids))
    calls = record_forwards(monkeypatch)
    got = policy.score([prompt], [[cand]])[0][0]
    assert calls[-1] == ((1, 2), True)  # the last token predicted, not fed
    assert got == pytest.approx(expected, abs=1e-4)
    assert policy._scored_values == {}  # nothing kept: no value was computed


def test_value_after_reuses_the_values_score_computed(model, tok, monkeypatch):
    policy = TinyGPTPolicy(model, tok)
    prompts, conts = ["4 9 10 13\n", "1 2\n"], [["1 + 2\n", "3 + 4\n"], ["6 * 7\n"]]
    fresh = TinyGPTPolicy(model, tok).value_after(prompts, conts)
    policy.score(prompts, conts)
    assert policy._scored_values == {}  # no value asked for yet: nothing kept, no extra token
    policy.value_after(["1 2\n"], [["3\n"]])
    policy.score(prompts, conts)
    calls_before = policy.usage.model_calls
    monkeypatch.setattr(GPT, "forward", lambda *a, **k: pytest.fail("value_after ran the model"))
    assert policy.value_after(prompts, conts) == fresh  # the same floats
    assert policy.usage.model_calls == calls_before  # nothing computed, nothing charged
    monkeypatch.undo()
    # a continuation score() never saw is computed; the others are still reused
    mixed = policy.value_after(prompts, [["1 + 2\n", "9 - 1\n"], ["6 * 7\n"]])
    assert mixed[0][0] == fresh[0][0] and mixed[1][0] == fresh[1][0]
    assert mixed[0][1] == pytest.approx(TinyGPTPolicy(model, tok).value(["4 9 10 13\n9 - 1\n"])[0], abs=1e-5)
    assert policy.usage.model_calls == calls_before + 1


def test_kept_values_are_dropped_when_the_weights_change(model, tok):
    policy = TinyGPTPolicy(model, tok)
    prompts, conts = ["4 9 10 13\n"], [["1 + 2\n"]]
    policy.value_after(["1 2\n"], [["3\n"]])
    policy.score(prompts, conts)
    assert policy._scored_values
    with torch.no_grad():
        policy.model.value_head.bias.add_(1.0)  # an in-place update, as an optimizer step
    try:
        fresh = TinyGPTPolicy(policy.model, tok).value_after(prompts, conts)
        assert policy.value_after(prompts, conts) == fresh
        assert policy._scored_values == {}
    finally:
        with torch.no_grad():
            policy.model.value_head.bias.sub_(1.0)


def test_kept_values_are_bounded(model, tok):
    policy = TinyGPTPolicy(model, tok)
    policy.max_kept_values = 4
    policy.value_after(["1 2\n"], [["3\n"]])
    policy.score(["1 2\n"], [["1 + 2\n", "3 + 4\n", "5\n", "6\n", "7\n"]])
    assert len(policy._scored_values) <= 4
    assert ("1 2\n", "7\n") in policy._scored_values  # the newest are kept


def test_generation_runs_each_prompt_once(model, tok, monkeypatch):
    calls = []
    forward = GPT.forward

    def recording_forward(self, idx, **kwargs):
        calls.append(tuple(idx.shape))
        return forward(self, idx, **kwargs)

    monkeypatch.setattr(GPT, "forward", recording_forward)
    TinyGPTPolicy(model, tok).generate(["4 9 10 13\n", "1 2\n"], num_samples=3, max_new_tokens=3, stop=())
    assert calls == [(2, 9), (6, 1), (6, 1)]


def test_continuations_must_be_lists_per_prompt(policy):
    with pytest.raises(ConfigError):
        policy.score(PROMPTS[:2], ["a", "b"])
    with pytest.raises(ConfigError):
        policy.score(PROMPTS[:2], [["a"]])


def test_value_is_in_unit_interval_and_batch_independent(policy):
    values = policy.value(PROMPTS)
    assert all(0.0 <= v <= 1.0 for v in values)
    alone = [policy.value([p])[0] for p in PROMPTS]
    assert values == pytest.approx(alone, abs=1e-5)


def test_value_reads_the_value_head_at_the_last_prompt_token(policy, model, tok):
    ids = torch.tensor([[tok.bos_id, *tok.encode("1 2\n")]])
    with torch.no_grad():
        expected = float(torch.sigmoid(model(ids).value_logits[0, -1]))
    assert policy.value(["1 2\n"]) == pytest.approx([expected], abs=1e-6)


def test_value_after_equals_the_value_of_prompt_plus_continuation(model, tok):
    policy = TinyGPTPolicy(model, tok)
    got = policy.value_after(PROMPTS, CANDIDATES)
    for prompt, cands, row in zip(PROMPTS, CANDIDATES, got, strict=True):
        assert row == pytest.approx(policy.value([prompt + c for c in cands]), abs=1e-5)
    assert got[0][2] == pytest.approx(policy.value([PROMPTS[0]])[0], abs=1e-6)  # empty: the prompt's own
    small = TinyGPTPolicy(model, tok, max_batch_size=2).value_after(PROMPTS, CANDIDATES)
    assert [v for row in small for v in row] == pytest.approx([v for row in got for v in row], abs=1e-5)
    with pytest.raises(ConfigError, match="one list of continuation strings per prompt"):
        policy.value_after(PROMPTS, ["x"] * len(PROMPTS))
    with pytest.raises(ConfigError, match="longer than block_size"):
        policy.value_after(["1 2\n"], [["9" * 60]])


def test_usage_counts_calls_and_tokens(policy):
    gens = policy.generate(["1 2\n", "3\n"], num_samples=2, temperature=0, max_new_tokens=4, stop=())
    policy.score(["1 2\n"], [["12 + 1", "x"]])
    policy.value(["1 2\n", "3\n", ""])
    assert policy.usage == base.Usage(
        model_calls=3,
        tokens_generated=sum(g.num_tokens for row in gens for g in row),
        tokens_scored=5 + 1,  # "12", " ", "+", " ", "1" and "x"
        # prompts with <bos>: "1 2\n" 5, "3\n" 3, "" 1; counted once per call, not per sample
        tokens_prompt=(5 + 3) + 5 + (5 + 3 + 1),
    )


def test_inference_restores_training_mode(model, tok):
    p = TinyGPTPolicy(model, tok)
    model.train()
    try:
        p.generate(["1\n"], max_new_tokens=2)
        p.score(["1\n"], [["2 3"]])
        assert model.training
    finally:
        model.eval()


def test_load_default_policy_without_checkpoint_names_the_directory(monkeypatch, tmp_path):
    monkeypatch.setattr(policy_module, "default_checkpoint_dir", lambda: tmp_path / "weights")
    with pytest.raises(CheckpointError, match="qstar train sft"):
        load_default_policy()


def test_load_default_policy_loads_a_saved_checkpoint(monkeypatch, tmp_path, policy):
    policy.save(tmp_path / "weights")
    monkeypatch.setattr(policy_module, "default_checkpoint_dir", lambda: tmp_path / "weights")
    loaded = load_default_policy()
    assert loaded.score(["1 2\n"], [["3"]]) == policy.score(["1 2\n"], [["3"]])


def test_a_repeated_prompt_in_one_call_gets_fresh_samples_not_clones():
    from qstar.policy.tinygpt.model import GPT, GPTConfig
    from qstar.policy.tinygpt.policy import TinyGPTPolicy
    from qstar.policy.tinygpt.tokenizer import Tokenizer

    tok = Tokenizer()
    policy = TinyGPTPolicy(
        GPT(GPTConfig(vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_embd=32), seed=0), tok
    )
    twice = policy.generate(
        ["a: 1\n", "a: 1\n"], num_samples=1, temperature=1.0, max_new_tokens=12, stop=(), seed=1
    )
    once = policy.generate(["a: 1\n"], num_samples=2, temperature=1.0, max_new_tokens=12, stop=(), seed=1)
    # The second copy continues the prompt's sample sequence: it equals the prompt's 2nd sample.
    assert [g[0].text for g in twice] == [g.text for g in once[0]]
    assert twice[0][0].text != twice[1][0].text


def test_shipped_checkpoints_load_by_name():
    """``default`` is the flagship loop's model, ``sft-oracle`` the imitation baseline it replaced;
    each ships with its model card."""
    from qstar.policy.loading import load_policy
    from qstar.policy.tinygpt.policy import SHIPPED_CHECKPOINTS, shipped_checkpoint_dir

    for name in SHIPPED_CHECKPOINTS:
        assert (shipped_checkpoint_dir(name) / "MODEL_CARD.md").is_file()
    default, oracle = load_policy("default"), load_policy("sft-oracle")
    assert default.name == "default" and oracle.name == "sft-oracle"
    assert "command" in default.meta  # the checkpoint's meta travels with the policy
    assert default.model.config.n_layer == 3 and oracle.model.config.n_layer == 4
    with pytest.raises(ConfigError, match="sft-oracle"):
        shipped_checkpoint_dir("sft")
