"""The built-in tiny GPT as a :class:`~qstar.policy.base.Policy`.

Every model input starts with ``<bos>``; the prompt follows, then the continuation (tokenized
separately, see :mod:`qstar.policy.tinygpt.tokenizer`).

How the work is batched:

* **Prompts are computed once.** ``generate`` and ``score`` first run all prompts of a call as
  one left-padded batch ("prefill") and keep their KV caches; each prompt's cache is then
  expanded over that prompt's samples or candidate continuations, so siblings in a search tree
  never recompute their shared prompt.
* ``generate`` decodes all ``prompts x num_samples`` rows together, one token per step, and drops
  rows from the batch as they finish.
* ``score`` runs the candidates of all prompts as one batch (right-padded after their left-padded
  prompt) and sums the log-probabilities of their tokens. Once values have been asked for
  (``value_after``: a search that values the children it has scored), it feeds each
  candidate's last token too and keeps the value head there, and ``value_after`` on the same
  prompt and continuation then costs no second forward pass (the same floats where a row's
  result does not depend on its batch, as in a teacher's search). Kept values are dropped as
  soon as any weight changes (a training step in between), and at most ``max_kept_values``
  are kept. A policy that only scores never pays for the extra token.

Log-probabilities reported by ``generate`` are those of the model's own distribution (temperature
1, no top-k), the same quantity ``score`` computes, whatever temperature and top-k were used to
sample; a generation's ``logprob`` includes the token that completed a stop string or ``<eos>``.

Sampling is reproducible and independent of batching: the sample ``j`` of a prompt draws its
uniforms from its own ``torch.Generator`` seeded by ``(seed, j, prompt text)``, and picks tokens by
inverse-CDF. So a prompt gets the same samples alone or in a batch, and the first 4 of 8
samples are the 4 samples of a ``num_samples=4`` call. (The same prompt twice in one call gets
the same samples.) ``seed=None`` draws a seed from the policy's own seeded RNG.

A prompt longer than the model's ``block_size`` raises :class:`~qstar.errors.ConfigError` (it is
not truncated); generation that reaches ``block_size`` stops with ``finished=False``.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from qstar.errors import CheckpointError, ConfigError
from qstar.policy.base import Generation, Usage, check_generate_args
from qstar.policy.tinygpt.checkpoint import CONFIG_FILE, load_checkpoint, save_checkpoint
from qstar.policy.tinygpt.model import GPT, GPTOutput, KVCache, expand_cache
from qstar.policy.tinygpt.tokenizer import Tokenizer

__all__ = [
    "TinyGPTPolicy",
    "SHIPPED_CHECKPOINTS",
    "default_checkpoint_dir",
    "shipped_checkpoint_dir",
    "load_default_policy",
]

#: Checkpoints shipped inside the package, by ``--model`` name: ``default`` (the flagship loop's
#: model, trained from random weights with no oracle data) and ``sft-oracle`` (the imitation
#: baseline it replaced, trained on oracle solutions of all four tasks). Model cards sit next to
#: the weights.
SHIPPED_CHECKPOINTS = {"default": ".", "sft-oracle": "sft-oracle"}


def default_checkpoint_dir() -> Path:
    """Where the shipped default checkpoint lives: ``qstar/policy/tinygpt/weights``."""
    return Path(__file__).parent / "weights"


def shipped_checkpoint_dir(name: str) -> Path:
    """The directory of a shipped checkpoint (:data:`SHIPPED_CHECKPOINTS`)."""
    if name not in SHIPPED_CHECKPOINTS:
        raise ConfigError(f"no shipped checkpoint {name!r}; choose from {', '.join(SHIPPED_CHECKPOINTS)}")
    return (default_checkpoint_dir() / SHIPPED_CHECKPOINTS[name]).resolve()


def load_default_policy(device: str = "cpu", *, name: str = "default") -> TinyGPTPolicy:
    """A shipped tiny GPT (``default`` or ``sft-oracle``); CheckpointError when it is missing."""
    directory = shipped_checkpoint_dir(name)
    if not (directory / CONFIG_FILE).is_file():
        raise CheckpointError(
            f"no {name} checkpoint at {directory}; train one with `qstar train rft` or "
            "`qstar train sft` (or pass a checkpoint directory explicitly)"
        )
    return TinyGPTPolicy.load(directory, device=device, name=name)


@dataclass
class _Prefill:
    """Prompts run as one left-padded batch of P rows."""

    cache: KVCache | None  # per layer (P, nh, Tp, hs)
    mask: Tensor  # (P, Tp) 1 = real token
    lengths: Tensor  # (P,) real tokens per prompt (including <bos>)
    ids: Tensor  # (P, Tp) left-padded token ids
    last_logits: Tensor  # (P, V) next-token logits after the prompt
    last_value_logits: Tensor  # (P,) value head at the last prompt token


@dataclass
class _Row:
    """One sample being generated."""

    tokens: list[int]
    logprob: float = 0.0
    text: str = ""
    finished: bool = False


def _row_seed(seed: int, sample: int, prompt: str) -> int:
    digest = hashlib.blake2b(f"{seed}\x00{sample}\x00{prompt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def _find_stop(text: str, stop: Sequence[str], start: int) -> int | None:
    """Index of the earliest stop string in ``text`` that ends at or after ``start``."""
    hits = [i for s in stop if (i := text.find(s, start)) >= 0]
    return min(hits) if hits else None


class TinyGPTPolicy:
    """A :class:`GPT` with its :class:`Tokenizer`, implementing the Policy protocol.

    ``seed`` seeds the RNG that supplies a sampling seed when a call passes ``seed=None``.
    ``max_batch_size`` bounds the rows of one forward pass (prompts are chunked above it).
    ``use_kv_cache=False`` makes ``generate`` recompute the whole sequence at every step: slow,
    kept as the reference the cached path is tested against.
    """

    def __init__(
        self,
        model: GPT,
        tokenizer: Tokenizer,
        device: str | torch.device = "cpu",
        *,
        name: str = "tinygpt",
        seed: int = 0,
        max_batch_size: int = 256,
        use_kv_cache: bool = True,
        meta: dict | None = None,
    ) -> None:
        if model.config.vocab_size != tokenizer.vocab_size:
            raise ConfigError(
                f"model vocab_size {model.config.vocab_size} != tokenizer vocab_size {tokenizer.vocab_size}"
            )
        if max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.name = name
        self.usage = Usage()
        self.max_batch_size = max_batch_size
        self.use_kv_cache = use_kv_cache
        #: The checkpoint's ``meta`` (how it was trained), ``{}`` for a model built in memory.
        self.meta = dict(meta or {})
        self._rng = random.Random(seed)
        # Values after (prompt, continuation) that score() computed, and the weights' version
        # they were computed with (see the module docstring).
        self.max_kept_values = 1 << 16
        self._values_wanted = False  # set by the first value_after call
        self._params: list[torch.nn.Parameter] = []
        self._params_of: GPT | None = None
        self._scored_values: dict[tuple[str, str], float] = {}
        self._scored_version: tuple[int, ...] = ()

    # ----------------------------------------------------------------------------- loading

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, device: str = "cpu", name: str | None = None
    ) -> TinyGPTPolicy:
        """A policy from a checkpoint directory (see :mod:`qstar.policy.tinygpt.checkpoint`)."""
        ckpt = load_checkpoint(path, device=device)
        return cls(
            ckpt.model,
            ckpt.tokenizer,
            device=device,
            name=name or f"tinygpt:{Path(path).name}",
            meta=ckpt.meta,
        )

    def save(self, path: str | os.PathLike[str], *, meta: dict | None = None, dtype: str = "float32") -> Path:
        """Save the model and tokenizer as a checkpoint directory."""
        return save_checkpoint(path, self.model, self.tokenizer, meta=meta, dtype=dtype)

    # ----------------------------------------------------------------------------- helpers

    @property
    def block_size(self) -> int:
        return self.model.config.block_size

    def _weights_version(self) -> tuple[int, ...]:
        """The model's identity and its weights' in-place update counters: swapping the model
        (a longer block), an optimizer step or a load changes them."""
        if self._params_of is not self.model:
            self._params, self._params_of = list(self.model.parameters()), self.model
        return (id(self.model), *(p._version for p in self._params))

    @contextmanager
    def _inference(self) -> Iterator[None]:
        was_training = self.model.training
        if was_training:  # eval() walks every module: skip it on the common already-eval path
            self.model.eval()
        try:
            with torch.inference_mode():
                yield
        finally:
            if was_training:
                self.model.train()

    def _encode_prompt(self, prompt: str) -> list[int]:
        ids = [self.tokenizer.bos_id, *self.tokenizer.encode(prompt)]
        if len(ids) > self.block_size:
            raise ConfigError(
                f"prompt of {len(ids)} tokens (with <bos>) is longer than the model's block_size "
                f"{self.block_size}: {prompt[:60]!r}..."
            )
        return ids

    def _prefill(self, prompt_ids: Sequence[list[int]], *, use_cache: bool = True) -> _Prefill:
        P, Tp = len(prompt_ids), max(len(ids) for ids in prompt_ids)
        ids = torch.full((P, Tp), self.tokenizer.pad_id, dtype=torch.long)
        mask = torch.zeros((P, Tp), dtype=torch.long)
        for i, row in enumerate(prompt_ids):  # left padding: the last prompt token is at Tp - 1
            ids[i, Tp - len(row) :] = torch.tensor(row)
            mask[i, Tp - len(row) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp_min(0)  # (P, Tp) count real tokens only
        out = self.model(
            ids, attention_mask=mask, position_ids=positions, use_cache=use_cache, last_only=True
        )
        return _Prefill(
            cache=out.past_key_values,
            mask=mask,
            lengths=mask.sum(-1),
            ids=ids,
            last_logits=out.logits[:, -1, :].float(),  # (P, V)
            last_value_logits=out.value_logits[:, -1].float(),  # (P,)
        )

    # ----------------------------------------------------------------------------- generate

    def generate(
        self,
        prompts: Sequence[str],
        *,
        num_samples: int = 1,
        temperature: float = 1.0,
        top_k: int | None = None,
        max_new_tokens: int = 64,
        stop: Sequence[str] = ("\n",),
        seed: int | None = None,
    ) -> list[list[Generation]]:
        """``num_samples`` continuations of each prompt; ``temperature=0`` is greedy.

        Each :class:`Generation` has the text with the stop string (and anything after it)
        removed, the summed model log-probability of the generated tokens (stop token
        included), the number of tokens, and ``finished`` (False when ``max_new_tokens`` or the
        block size ran out first).
        """
        stop = check_generate_args(
            num_samples=num_samples,
            temperature=temperature,
            top_k=top_k,
            max_new_tokens=max_new_tokens,
            stop=stop,
        )

        prompt_ids = [self._encode_prompt(p) for p in prompts]
        base_seed = self._rng.getrandbits(63) if seed is None else seed
        self.usage.model_calls += 1
        self.usage.tokens_prompt += sum(len(ids) for ids in prompt_ids)
        per_chunk = max(1, self.max_batch_size // num_samples)
        # The k-th copy of a prompt in one call continues that prompt's sample sequence
        # (samples k*n .. k*n+n-1), so repeated prompts get different samples, not clones.
        seen: dict[str, int] = {}
        copies = []
        for p in prompts:
            copies.append(seen.get(p, 0))
            seen[p] = copies[-1] + 1
        results: list[list[Generation]] = []
        with self._inference():
            for start in range(0, len(prompts), per_chunk):
                results += self._generate_chunk(
                    list(prompts[start : start + per_chunk]),
                    prompt_ids[start : start + per_chunk],
                    copies=copies[start : start + per_chunk],
                    num_samples=num_samples,
                    temperature=float(temperature),
                    top_k=top_k,
                    max_new_tokens=max_new_tokens,
                    stop=stop,
                    seed=base_seed,
                )
        self.usage.tokens_generated += sum(g.num_tokens for gens in results for g in gens)
        return results

    def _generate_chunk(
        self,
        prompts: list[str],
        prompt_ids: list[list[int]],
        *,
        copies: list[int],
        num_samples: int,
        temperature: float,
        top_k: int | None,
        max_new_tokens: int,
        stop: tuple[str, ...],
        seed: int,
    ) -> list[list[Generation]]:
        n = num_samples
        rows = [_Row(tokens=[]) for _ in range(len(prompts) * n)]
        if max_new_tokens > 0:
            self._decode(prompts, prompt_ids, copies, rows, n, temperature, top_k, max_new_tokens, stop, seed)
        return [
            [
                Generation(text=r.text, logprob=r.logprob, num_tokens=len(r.tokens), finished=r.finished)
                for r in rows[i * n : (i + 1) * n]
            ]
            for i in range(len(prompts))
        ]

    def _decode(
        self,
        prompts: list[str],
        prompt_ids: list[list[int]],
        copies: list[int],
        rows: list[_Row],
        num_samples: int,
        temperature: float,
        top_k: int | None,
        max_new_tokens: int,
        stop: tuple[str, ...],
        seed: int,
    ) -> None:
        tok, device = self.tokenizer, self.device
        pre = self._prefill(prompt_ids, use_cache=self.use_kv_cache)
        B = len(rows)
        row_prompt = torch.arange(len(prompts), device=device).repeat_interleave(num_samples)  # (B,)
        # Every sample of a prompt starts from that prompt's cache: the prompt is computed once.
        cache = expand_cache(pre.cache, row_prompt) if pre.cache is not None else None
        mask = pre.mask[row_prompt]  # (B, Tp)
        seq = pre.ids[row_prompt]  # (B, Tp), used only without the cache
        lengths = pre.lengths[row_prompt].tolist()  # real tokens fed so far, per row
        logits = pre.last_logits[row_prompt]  # (B, V)
        uniforms = None
        if temperature > 0:
            uniforms = torch.stack(
                [
                    torch.rand(
                        max_new_tokens,
                        generator=torch.Generator().manual_seed(
                            _row_seed(
                                seed,
                                copies[j // num_samples] * num_samples + j % num_samples,
                                prompts[j // num_samples],
                            )
                        ),
                    )
                    for j in range(B)
                ]
            ).to(device)  # (B, max_new_tokens)
        active = torch.arange(B, device=device)  # row ids of the batch positions
        max_stop = max((len(s) for s in stop), default=1)

        for step in range(max_new_tokens):
            logp = torch.log_softmax(logits, dim=-1)  # (A, V)
            if uniforms is None:
                next_tok = logits.argmax(dim=-1)  # (A,)
            else:
                scaled = logits / temperature  # (A, V)
                if top_k is not None and top_k < scaled.size(-1):
                    kth = torch.topk(scaled, top_k, dim=-1).values[:, -1:]  # (A, 1)
                    scaled = scaled.masked_fill(scaled < kth, float("-inf"))
                cdf = torch.softmax(scaled, dim=-1).cumsum(dim=-1)  # (A, V)
                u = uniforms[active, step] * cdf[:, -1]  # (A,)
                # Inverse CDF: the first token whose cumulative probability exceeds u; a token
                # of probability zero never is (its cdf equals its predecessor's).
                next_tok = torch.searchsorted(cdf, u[:, None], right=True).squeeze(-1)  # (A,)
                next_tok = next_tok.clamp_max(cdf.size(-1) - 1)
            token_logp = logp.gather(-1, next_tok[:, None]).squeeze(-1)  # (A,)

            keep = []
            for a, (row_id, t, lp) in enumerate(
                zip(active.tolist(), next_tok.tolist(), token_logp.tolist(), strict=True)
            ):
                row = rows[row_id]
                row.tokens.append(t)
                row.logprob += lp
                if t == tok.eos_id:
                    row.finished = True
                    continue
                before = len(row.text)
                row.text += tok.decode_token(t)
                cut = _find_stop(row.text, stop, max(0, before - max_stop + 1))
                if cut is not None:
                    row.text = row.text[:cut]
                    row.finished = True
                elif lengths[row_id] < self.block_size:  # the new token still has a position
                    keep.append(a)
            if not keep or step == max_new_tokens - 1:
                break

            if len(keep) < len(active):  # drop finished rows from the batch
                keep_t = torch.tensor(keep, device=device)
                active, next_tok, mask, seq = active[keep_t], next_tok[keep_t], mask[keep_t], seq[keep_t]
                if cache is not None:
                    cache = expand_cache(cache, keep_t)
            A = len(keep)
            positions = torch.tensor([lengths[r] for r in active.tolist()], device=device)[:, None]  # (A, 1)
            for r in active.tolist():
                lengths[r] += 1
            mask = torch.cat((mask, mask.new_ones(A, 1)), dim=1)  # (A, S + 1)
            if cache is not None:
                out = self.model(
                    next_tok[:, None],
                    attention_mask=mask,
                    position_ids=positions,
                    past_key_values=cache,
                    use_cache=True,
                )
                cache = out.past_key_values
            else:
                seq = torch.cat((seq, next_tok[:, None]), dim=1)  # (A, S + 1)
                full_positions = (mask.cumsum(-1) - 1).clamp_min(0)  # (A, S + 1)
                out = self.model(seq, attention_mask=mask, position_ids=full_positions, last_only=True)
            logits = out.logits[:, -1, :].float()  # (A, V)

    # ----------------------------------------------------------------------------- score

    def score(self, prompts: Sequence[str], continuations: Sequence[Sequence[str]]) -> list[list[float]]:
        """Summed log-probability of each candidate continuation given its prompt.

        Each prompt is run once; its KV cache is expanded over its candidates, and the
        candidates of several prompts run together as one right-padded batch. An empty
        continuation scores 0.0.
        """
        if len(prompts) != len(continuations):
            raise ConfigError(
                f"score() needs one list of continuations per prompt: {len(prompts)} prompts, "
                f"{len(continuations)} lists"
            )
        if any(isinstance(c, str) for c in continuations):
            raise ConfigError("score() continuations must be a list of lists of strings, one list per prompt")
        prompt_ids = [self._encode_prompt(p) for p in prompts]
        cont_ids = [[self.tokenizer.encode(c) for c in cands] for cands in continuations]
        for i, (p_ids, cands) in enumerate(zip(prompt_ids, cont_ids, strict=True)):
            for c_ids in cands:
                # The last token is predicted, never fed, so it may sit at position block_size.
                if len(p_ids) + len(c_ids) > self.block_size + 1:
                    raise ConfigError(
                        f"prompt {i} plus a continuation is {len(p_ids) + len(c_ids)} tokens, more than "
                        f"block_size + 1 = {self.block_size + 1}"
                    )
        self.usage.model_calls += 1
        self.usage.tokens_prompt += sum(len(ids) for ids in prompt_ids)
        self.usage.tokens_scored += sum(len(c) for cands in cont_ids for c in cands)

        scores = [[0.0] * len(cands) for cands in cont_ids]
        values: dict[tuple[int, int], float] = {}
        with self._inference():
            for chunk in self._prompt_chunks(cont_ids):
                self._score_chunk(chunk, prompt_ids, cont_ids, scores, values)
        if values:
            self._keep_scored_values({(prompts[i], continuations[i][j]): v for (i, j), v in values.items()})
        return scores

    def _keep_scored_values(self, values: dict[tuple[str, str], float]) -> None:
        """Add a score call's values to the kept ones: all kept values date from the current
        weights, and at most :attr:`max_kept_values` are kept (the oldest half is dropped)."""
        version = self._weights_version()
        if version != self._scored_version:
            self._scored_values, self._scored_version = {}, version
        self._scored_values.update(values)
        if len(self._scored_values) > self.max_kept_values:
            drop = len(self._scored_values) - self.max_kept_values // 2
            for key in list(self._scored_values)[:drop]:
                del self._scored_values[key]

    def _prompt_chunks(self, cont_ids: list[list[list[int]]]) -> Iterator[list[int]]:
        """Prompt indices grouped so a group's candidates fill about ``max_batch_size`` rows."""
        chunk: list[int] = []
        rows = 0
        for i, cands in enumerate(cont_ids):
            n = sum(1 for c in cands if c)
            if not n:
                continue
            if chunk and rows + n > self.max_batch_size:
                yield chunk
                chunk, rows = [], 0
            chunk.append(i)
            rows += n
        if chunk:
            yield chunk

    def _score_chunk(
        self,
        chunk: list[int],
        prompt_ids: list[list[int]],
        cont_ids: list[list[list[int]]],
        scores: list[list[float]],
        values: dict[tuple[int, int], float],
    ) -> None:
        """Score the candidates of the prompts ``chunk`` into ``scores``; where every row of a
        batch fits the block with its last token fed, also the value there into ``values``."""
        device = self.device
        pre = self._prefill([prompt_ids[i] for i in chunk])
        first_logp = torch.log_softmax(pre.last_logits, dim=-1)  # (P, V)
        items = [(p, i, j) for p, i in enumerate(chunk) for j, c in enumerate(cont_ids[i]) if c]
        for start in range(0, len(items), self.max_batch_size):
            batch = items[start : start + self.max_batch_size]
            cand, cand_mask = self._pad_rows([cont_ids[i][j] for _, i, j in batch])
            row_prompt = torch.tensor([p for p, _, _ in batch], device=device)  # (R,)
            total = first_logp[row_prompt].gather(-1, cand[:, :1]).squeeze(-1)  # (R,)
            fits = self._values_wanted and all(
                len(prompt_ids[i]) + len(cont_ids[i][j]) <= self.block_size for _, i, j in batch
            )
            if cand.shape[1] > 1 or fits:
                # The last token is predicted; it is fed too (for its value) where it fits.
                feed = cand.shape[1] if fits else cand.shape[1] - 1
                out = self._after_prompts(pre, row_prompt, cand[:, :feed], cand_mask[:, :feed])
                logp = torch.log_softmax(out.logits[:, : cand.shape[1] - 1].float(), dim=-1)  # (R, Tc - 1, V)
                token_logp = logp.gather(-1, cand[:, 1:, None]).squeeze(-1)  # (R, Tc - 1)
                total = total + (token_logp * cand_mask[:, 1:]).sum(-1)  # (R,)
                if fits:
                    last = cand_mask.sum(-1) - 1  # (R,) each row's last real token
                    got = torch.sigmoid(
                        out.value_logits.float()[torch.arange(len(batch), device=device), last]
                    )
                    values.update(((i, j), v) for (_, i, j), v in zip(batch, got.tolist(), strict=True))
            for (_, i, j), value in zip(batch, total.tolist(), strict=True):
                scores[i][j] = value

    def _pad_rows(self, rows: list[list[int]]) -> tuple[Tensor, Tensor]:
        """Candidate token rows right-padded on the policy's device: ids (R, T) and a bool mask."""
        ids = torch.full((len(rows), max(map(len, rows))), self.tokenizer.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids, dtype=torch.bool)
        for r, row in enumerate(rows):  # right padding after the prompt
            ids[r, : len(row)] = torch.tensor(row)
            mask[r, : len(row)] = True
        return ids.to(self.device), mask.to(self.device)

    def _after_prompts(
        self, pre: _Prefill, row_prompt: Tensor, feed: Tensor, feed_mask: Tensor, *, value_only: bool = False
    ) -> GPTOutput:
        """Run the right-padded rows ``feed`` (R, T) on from the cache of their prompts
        (``row_prompt``: each row's prompt in ``pre``); ``value_only`` skips the LM head."""
        offsets = torch.arange(feed.shape[1], device=self.device)[None, :]  # (1, T)
        # Padding gets position 0 so it never indexes past the position table.
        positions = torch.where(feed_mask, pre.lengths[row_prompt][:, None] + offsets, 0)  # (R, T)
        mask = torch.cat((pre.mask[row_prompt], feed_mask.long()), dim=1)
        return self.model(
            feed,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=expand_cache(pre.cache, row_prompt),
            value_only=value_only,
        )

    # ----------------------------------------------------------------------------- value

    def value(self, prompts: Sequence[str]) -> list[float]:
        """The value head at each prompt's last token, in [0, 1]."""
        prompt_ids = [self._encode_prompt(p) for p in prompts]
        self.usage.model_calls += 1
        self.usage.tokens_prompt += sum(len(ids) for ids in prompt_ids)
        values: list[float] = []
        with self._inference():
            for start in range(0, len(prompt_ids), self.max_batch_size):
                pre = self._prefill(prompt_ids[start : start + self.max_batch_size], use_cache=False)
                values += torch.sigmoid(pre.last_value_logits).tolist()
        return values

    def value_after(
        self, prompts: Sequence[str], continuations: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        """The value head after each prompt followed by each of its continuations: what
        ``value([prompt + continuation])`` gives, but each prompt is run once and its KV cache
        shared by its continuations (the children of one state share the state's text). An
        empty continuation gives the prompt's own value. Values ``score`` computed with the
        same weights are reused (module docstring), not recomputed."""
        if len(prompts) != len(continuations) or any(isinstance(c, str) for c in continuations):
            raise ConfigError("value_after() needs one list of continuation strings per prompt")
        prompt_ids = [self._encode_prompt(p) for p in prompts]
        cont_ids = [[self.tokenizer.encode(c) for c in cands] for cands in continuations]
        for i, (p_ids, cands) in enumerate(zip(prompt_ids, cont_ids, strict=True)):
            if any(len(p_ids) + len(c) > self.block_size for c in cands):
                raise ConfigError(
                    f"prompt {i} plus a continuation is longer than block_size {self.block_size}"
                )
        self._values_wanted = True
        if self._scored_version != self._weights_version():
            self._scored_values = {}  # computed with other weights
        known = self._scored_values
        values: list[list[float]] = [
            [known.get((p, c), -1.0) for c in cands] for p, cands in zip(prompts, continuations, strict=True)
        ]
        todo = [[j for j, v in enumerate(row) if v < 0] for row in values]
        asked = [i for i, js in enumerate(todo) if js]
        if not asked:
            return values
        todo_ids = [[cont_ids[i][j] for j in todo[i]] for i in asked]
        got = self._run_value_after([prompt_ids[i] for i in asked], todo_ids)
        for i, row in zip(asked, got, strict=True):
            for j, v in zip(todo[i], row, strict=True):
                values[i][j] = v
        return values

    def _run_value_after(
        self, prompt_ids: list[list[int]], cont_ids: list[list[list[int]]]
    ) -> list[list[float]]:
        """:meth:`value_after` on token ids, computed (one model call)."""
        self.usage.model_calls += 1
        self.usage.tokens_prompt += sum(map(len, prompt_ids)) + sum(
            len(c) for cands in cont_ids for c in cands
        )
        values: list[list[float]] = [[0.0] * len(cands) for cands in cont_ids]
        with self._inference():
            # An empty continuation still needs its prompt run: it counts as one row here.
            for chunk in self._prompt_chunks([[c or [0] for c in cands] for cands in cont_ids]):
                pre = self._prefill([prompt_ids[i] for i in chunk])
                own = torch.sigmoid(pre.last_value_logits).tolist()
                items = [(p, i, j) for p, i in enumerate(chunk) for j in range(len(cont_ids[i]))]
                for p, i, j in items:
                    values[i][j] = own[p]
                items = [(p, i, j) for p, i, j in items if cont_ids[i][j]]
                for start in range(0, len(items), self.max_batch_size):
                    self._value_rows(items[start : start + self.max_batch_size], pre, cont_ids, values)
        return values

    def _value_rows(
        self,
        batch: list[tuple[int, int, int]],
        pre: _Prefill,
        cont_ids: list[list[list[int]]],
        values: list[list[float]],
    ) -> None:
        """Feed each ``(prompt row, prompt, continuation)`` of ``batch`` after its prompt's cache;
        write the value at the continuation's last token into ``values``."""
        cand, cand_mask = self._pad_rows([cont_ids[i][j] for _, i, j in batch])
        row_prompt = torch.tensor([p for p, _, _ in batch], device=self.device)
        out = self._after_prompts(pre, row_prompt, cand, cand_mask, value_only=True)
        last = cand_mask.sum(-1) - 1  # (R,) each row's last real token
        got = torch.sigmoid(out.value_logits.float()[torch.arange(len(batch), device=self.device), last])
        for (_, i, j), v in zip(batch, got.tolist(), strict=True):
            values[i][j] = v

    def features(self, prompts: Sequence[str]) -> list[list[float]]:
        """The trunk's final hidden state at each prompt's last token (what the value head
        reads), for read-outs such as :mod:`qstar.rewards.probe`. Rows are right-padded, so the
        causal mask alone keeps padding out."""
        prompt_ids = [self._encode_prompt(p) for p in prompts]
        self.usage.model_calls += 1
        self.usage.tokens_prompt += sum(len(ids) for ids in prompt_ids)
        out: list[list[float]] = []
        with self._inference():
            for start in range(0, len(prompt_ids), self.max_batch_size):
                rows = prompt_ids[start : start + self.max_batch_size]
                ids = torch.full((len(rows), max(map(len, rows))), self.tokenizer.pad_id, dtype=torch.long)
                for i, row in enumerate(rows):
                    ids[i, : len(row)] = torch.tensor(row)
                hidden = self.model.hidden_states(ids.to(self.device))  # (B, T, C)
                last = torch.tensor([len(row) - 1 for row in rows], device=self.device)
                out += hidden[torch.arange(len(rows), device=self.device), last].float().tolist()
        return out

    def __repr__(self) -> str:
        c = self.model.config
        return (
            f"TinyGPTPolicy(name={self.name!r}, n_layer={c.n_layer}, n_embd={c.n_embd}, "
            f"params={self.model.num_params()}, device={str(self.device)!r})"
        )
