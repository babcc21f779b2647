"""Any local Hugging Face causal LM as a :class:`~qstar.policy.base.Policy` (extra ``[hf]``).

``--model hf:/path/to/dir`` loads a directory written by ``save_pretrained`` (config, weights,
tokenizer). **Nothing is downloaded**: a path that is not a local directory is a
:class:`~qstar.errors.CheckpointError`, and transformers runs with ``local_files_only=True``
(and ``HF_HUB_OFFLINE=1`` unless the caller set it). Fetch a model yourself first, e.g.
``huggingface-cli download Qwen/Qwen2.5-0.5B-Instruct --local-dir models/qwen``.

The work is batched as in :mod:`qstar.policy.tinygpt.policy`:

* **Prompts are computed once.** ``generate`` and ``score`` run the prompts of a call as one
  left-padded batch ("prefill"); each prompt's KV cache is then copied over that prompt's
  samples or candidate continuations, so siblings in a search tree share their prompt.
* ``generate`` decodes all ``prompts x num_samples`` rows together and drops finished rows.
  Sampling draws sample ``j`` of a prompt from its own generator seeded by
  ``(seed, j, prompt)``, so results do not depend on batching; the k-th copy of a prompt in one
  call gets samples ``k*num_samples ..``, so copies (sibling paths) differ.
* Reported log-probabilities are the model's own (temperature 1, no top-k), the quantity
  ``score`` computes, and include the token that completed a stop string or end of text.

Chat template. When the tokenizer has one (``use_chat_template=None``, the default, means "if
present"), each prompt is sent as one user message followed by the assistant turn's opening, and
the model's reply is the continuation. Without one, the prompt text is used as is.

Tokenization. A continuation's tokens are those of ``prompt + continuation`` after the
prompt's own tokens when the prompt's tokenization is a prefix of the joint one (so
SentencePiece's leading-space rule does not distort scores); otherwise it is tokenized alone.

The model has no value head: ``has_value_head`` is False and :meth:`HFPolicy.value` raises
:class:`NotImplementedError`; ``--scorer auto`` then falls back to the verifier or no scorer.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import os
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from qstar.errors import CheckpointError, ConfigError, require_extra
from qstar.policy.base import Generation, Usage, check_generate_args

__all__ = ["HFPolicy", "auto_device"]


def auto_device() -> str:
    """``cuda`` when a GPU is visible, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def _row_seed(seed: int, sample: int, prompt: str) -> int:
    digest = hashlib.blake2b(f"{seed}\x00{sample}\x00{prompt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def _select_rows(cache: Any, index: torch.Tensor) -> Any:
    """A new cache holding rows ``index`` (repeats allowed) of ``cache``; ``cache`` is untouched."""
    if hasattr(cache, "layers"):  # transformers >= 4.56: copy the layer objects, not the tensors
        out = copy.copy(cache)
        out.layers = [copy.copy(layer) for layer in cache.layers]
    else:
        out = copy.deepcopy(cache)
    out.batch_select_indices(index)
    return out


def _find_stop(text: str, stop: Sequence[str]) -> int | None:
    hits = [i for s in stop if (i := text.find(s)) >= 0]
    return min(hits) if hits else None


class HFPolicy:
    """A transformers causal LM and its tokenizer (see module docstring)."""

    has_value_head = False

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        device: str | None = None,
        name: str = "hf",
        seed: int = 0,
        max_batch_size: int = 64,
        use_chat_template: bool | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be >= 1, got {max_batch_size}")
        has_template = bool(getattr(tokenizer, "chat_template", None))
        if use_chat_template and not has_template:
            raise ConfigError(
                f"model {name!r}: use_chat_template=True but the tokenizer has no chat template"
            )
        self.device = torch.device(device or auto_device())
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.name = name
        self.usage = Usage()
        self.max_batch_size = max_batch_size
        self.use_chat_template = has_template if use_chat_template is None else use_chat_template
        self._rng = random.Random(seed)
        config = model.config
        self.max_length: int | None = getattr(config, "max_position_embeddings", None)
        eos = {tokenizer.eos_token_id}
        gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        eos |= set(gen_eos) if isinstance(gen_eos, (list, tuple)) else {gen_eos}
        self.eos_ids = {int(t) for t in eos if t is not None}
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else (tokenizer.eos_token_id or 0))
        # transformers 5 renamed ``past_key_values`` to ``cache``; accept both generations.
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._keep_kw = "logits_to_keep" if "logits_to_keep" in params else None

    # ----------------------------------------------------------------------------- loading

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        device: str | None = None,
        dtype: str | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> HFPolicy:
        """Load a local ``save_pretrained`` directory; ``device=None`` picks CUDA when present.

        ``dtype`` (``"float32"``, ``"bfloat16"``, ...) defaults to float32 on CPU and to the
        checkpoint's own dtype on a GPU.
        """
        directory = Path(path).expanduser()
        if not directory.is_dir():
            raise CheckpointError(
                f"hf model {str(path)!r}: not a local directory. qstar never downloads weights; "
                "download the model yourself (e.g. `huggingface-cli download NAME --local-dir DIR`) "
                "and pass --model hf:DIR"
            )
        if not (directory / "config.json").is_file():
            raise CheckpointError(
                f"hf model {str(directory)!r}: no config.json (not a save_pretrained directory)"
            )
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        transformers = require_extra("transformers", "hf")
        device = device or auto_device()
        if dtype is None:
            torch_dtype: Any = torch.float32 if device == "cpu" else "auto"
        else:
            torch_dtype = getattr(torch, dtype, None)
            if not isinstance(torch_dtype, torch.dtype):
                raise ConfigError(f"unknown dtype {dtype!r}; use float32, float16 or bfloat16")
        dtype_kw = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
        transformers.utils.logging.disable_progress_bar()  # one CLI line per error, no bars
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(directory, local_files_only=True)
            model = transformers.AutoModelForCausalLM.from_pretrained(
                directory, local_files_only=True, **{dtype_kw: torch_dtype}
            )
        except (OSError, ValueError, KeyError) as err:
            raise CheckpointError(f"hf model {str(directory)!r}: cannot load: {err}") from err
        return cls(model, tokenizer, device=device, name=name or f"hf:{directory.name}", **kwargs)

    # ----------------------------------------------------------------------------- tokens

    def _prompt_text(self, prompt: str) -> str:
        if not self.use_chat_template:
            return prompt
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )

    def _encode_prompt(self, prompt: str) -> list[int]:
        text = self._prompt_text(prompt)
        ids = list(self.tokenizer(text, add_special_tokens=not self.use_chat_template)["input_ids"])
        if not ids:  # an empty prompt still needs one position to predict from
            start = self.tokenizer.bos_token_id
            ids = [start if start is not None else self.pad_id]
        if self.max_length is not None and len(ids) > self.max_length:
            raise ConfigError(
                f"prompt of {len(ids)} tokens is longer than the model's {self.max_length} positions: "
                f"{prompt[:60]!r}..."
            )
        return ids

    def _encode_continuation(self, prompt: str, prompt_ids: list[int], continuation: str) -> list[int]:
        if not continuation:
            return []
        joint = self.tokenizer(
            self._prompt_text(prompt) + continuation, add_special_tokens=not self.use_chat_template
        )["input_ids"]
        if len(joint) > len(prompt_ids) and list(joint[: len(prompt_ids)]) == prompt_ids:
            return list(joint[len(prompt_ids) :])
        return list(self.tokenizer(continuation, add_special_tokens=False)["input_ids"])

    def _forward(
        self,
        ids: torch.Tensor,
        mask: torch.Tensor,
        positions: torch.Tensor,
        cache: Any = None,
        last_only: bool = False,
    ) -> tuple[torch.Tensor, Any]:
        """(logits, cache) of ``ids`` (B, T) after ``cache``; ``mask`` covers past and new tokens."""
        kw: dict[str, Any] = {self._cache_kw: cache}
        if last_only and self._keep_kw:
            kw[self._keep_kw] = 1
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **kw)
        return out.logits, out[self._cache_kw]

    def _prefill(
        self, prompt_ids: Sequence[list[int]]
    ) -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(cache, mask (P, Tp), lengths (P,), last logits (P, V)) of left-padded prompts."""
        P, Tp = len(prompt_ids), max(len(ids) for ids in prompt_ids)
        ids = torch.full((P, Tp), self.pad_id, dtype=torch.long)
        mask = torch.zeros((P, Tp), dtype=torch.long)
        for i, row in enumerate(prompt_ids):  # left padding: every prompt ends at Tp - 1
            ids[i, Tp - len(row) :] = torch.tensor(row)
            mask[i, Tp - len(row) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp_min(0)  # (P, Tp)
        logits, cache = self._forward(ids, mask, positions, last_only=True)
        return cache, mask, mask.sum(-1), logits[:, -1, :].float()

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
        """``num_samples`` continuations of each prompt; ``temperature=0`` is greedy."""
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
        # A prompt's k-th copy in the call continues its sample sequence (samples k*n .. k*n+n-1),
        # so sibling paths at the same state draw different samples.
        copies: Counter[str] = Counter()
        first_sample = []
        for p in prompts:
            first_sample.append(copies[p] * num_samples)
            copies[p] += 1
        results: list[list[Generation]] = []
        with torch.inference_mode():
            for start in range(0, len(prompts), per_chunk):
                chunk = slice(start, start + per_chunk)
                results += self._generate_chunk(
                    list(prompts[chunk]),
                    prompt_ids[chunk],
                    first_sample[chunk],
                    num_samples,
                    float(temperature),
                    top_k,
                    max_new_tokens,
                    stop,
                    base_seed,
                )
        self.usage.tokens_generated += sum(g.num_tokens for row in results for g in row)
        return results

    def _generate_chunk(
        self,
        prompts: list[str],
        prompt_ids: list[list[int]],
        first_sample: list[int],
        n: int,
        temperature: float,
        top_k: int | None,
        max_new_tokens: int,
        stop: tuple[str, ...],
        seed: int,
    ) -> list[list[Generation]]:
        B = len(prompts) * n
        tokens: list[list[int]] = [[] for _ in range(B)]
        logprobs, texts, finished = [0.0] * B, [""] * B, [False] * B
        if max_new_tokens > 0:
            cache, mask, lengths, logits = self._prefill(prompt_ids)
            row_prompt = torch.arange(len(prompts), device=self.device).repeat_interleave(n)  # (B,)
            cache = _select_rows(cache, row_prompt)  # every sample starts from its prompt's cache
            mask, logits = mask[row_prompt], logits[row_prompt]  # (B, Tp), (B, V)
            length = lengths[row_prompt].tolist()
            uniforms = None
            if temperature > 0:
                uniforms = torch.stack(
                    [
                        torch.rand(
                            max_new_tokens,
                            generator=torch.Generator().manual_seed(
                                _row_seed(seed, first_sample[j // n] + j % n, prompts[j // n])
                            ),
                        )
                        for j in range(B)
                    ]
                ).to(self.device)  # (B, max_new_tokens)
            active = list(range(B))
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
                    u = uniforms[active, step] * cdf[:, -1]  # (A,) inverse-CDF sampling
                    next_tok = torch.searchsorted(cdf, u[:, None], right=True).squeeze(-1)
                    next_tok = next_tok.clamp_max(cdf.size(-1) - 1)  # (A,)
                token_logp = logp.gather(-1, next_tok[:, None]).squeeze(-1)  # (A,)
                keep = []
                for a, (r, t, lp) in enumerate(
                    zip(active, next_tok.tolist(), token_logp.tolist(), strict=True)
                ):
                    tokens[r].append(t)
                    logprobs[r] += lp
                    if t in self.eos_ids:
                        finished[r] = True
                        continue
                    text = self.tokenizer.decode(tokens[r], skip_special_tokens=True)
                    cut = _find_stop(text, stop)
                    if cut is not None:
                        text, finished[r] = text[:cut], True
                    elif self.max_length is None or length[r] < self.max_length:
                        keep.append(a)
                    texts[r] = text
                if not keep or step == max_new_tokens - 1:
                    break
                keep_t = torch.tensor(keep, device=self.device)
                if len(keep) < len(active):  # drop finished rows from the batch
                    cache.batch_select_indices(keep_t)
                    mask, next_tok = mask[keep_t], next_tok[keep_t]
                    active = [active[a] for a in keep]
                positions = torch.tensor([length[r] for r in active], device=self.device)[:, None]  # (A, 1)
                for r in active:
                    length[r] += 1
                mask = torch.cat((mask, mask.new_ones(len(active), 1)), dim=1)  # (A, S + 1)
                logits, cache = self._forward(next_tok[:, None], mask, positions, cache)
                logits = logits[:, -1, :].float()  # (A, V)
        return [
            [
                Generation(texts[r], logprobs[r], len(tokens[r]), finished[r])
                for r in range(i * n, (i + 1) * n)
            ]
            for i in range(len(prompts))
        ]

    # ----------------------------------------------------------------------------- score

    def score(self, prompts: Sequence[str], continuations: Sequence[Sequence[str]]) -> list[list[float]]:
        """Summed log-probability of each candidate continuation given its prompt; each prompt
        is computed once and its cache shared by its candidates. An empty continuation is 0.0."""
        if len(prompts) != len(continuations) or any(isinstance(c, str) for c in continuations):
            raise ConfigError("score() needs one list of continuation strings per prompt")
        prompt_ids = [self._encode_prompt(p) for p in prompts]
        cont_ids = [
            [self._encode_continuation(p, ids, c) for c in cands]
            for p, ids, cands in zip(prompts, prompt_ids, continuations, strict=True)
        ]
        for i, (p_ids, cands) in enumerate(zip(prompt_ids, cont_ids, strict=True)):
            longest = max((len(c) for c in cands), default=0)
            # The last token is predicted, never fed, so it may stand one past the table.
            if self.max_length is not None and len(p_ids) + longest > self.max_length + 1:
                raise ConfigError(
                    f"prompt {i} plus a continuation is {len(p_ids) + longest} tokens, more than the "
                    f"model's {self.max_length} positions"
                )
        self.usage.model_calls += 1
        self.usage.tokens_prompt += sum(len(ids) for ids in prompt_ids)
        self.usage.tokens_scored += sum(len(c) for cands in cont_ids for c in cands)
        scores = [[0.0] * len(cands) for cands in cont_ids]
        asked = [i for i, cands in enumerate(cont_ids) if any(cands)]
        per_chunk = max(1, self.max_batch_size // max(1, max((len(cont_ids[i]) for i in asked), default=1)))
        with torch.inference_mode():
            for start in range(0, len(asked), per_chunk):
                self._score_chunk(asked[start : start + per_chunk], prompt_ids, cont_ids, scores)
        return scores

    def _score_chunk(
        self,
        chunk: list[int],
        prompt_ids: list[list[int]],
        cont_ids: list[list[list[int]]],
        scores: list[list[float]],
    ) -> None:
        cache, mask, lengths, last_logits = self._prefill([prompt_ids[i] for i in chunk])
        first_logp = torch.log_softmax(last_logits, dim=-1)  # (P, V)
        items = [(p, i, j) for p, i in enumerate(chunk) for j, c in enumerate(cont_ids[i]) if c]
        R, Tc = len(items), max(len(cont_ids[i][j]) for _, i, j in items)
        cand = torch.full((R, Tc), self.pad_id, dtype=torch.long)
        cand_mask = torch.zeros((R, Tc), dtype=torch.bool)
        for r, (_, i, j) in enumerate(items):  # right padding after the left-padded prompt
            cand[r, : len(cont_ids[i][j])] = torch.tensor(cont_ids[i][j])
            cand_mask[r, : len(cont_ids[i][j])] = True
        cand, cand_mask = cand.to(self.device), cand_mask.to(self.device)
        row_prompt = torch.tensor([p for p, _, _ in items], device=self.device)  # (R,)
        total = first_logp[row_prompt].gather(-1, cand[:, :1]).squeeze(-1)  # (R,)
        if Tc > 1:
            offsets = torch.arange(Tc - 1, device=self.device)[None, :]  # (1, Tc - 1)
            positions = lengths[row_prompt][:, None] + offsets  # (R, Tc - 1)
            if self.max_length is not None:  # padding positions must stay inside the table
                positions = positions.clamp_max(self.max_length - 1)
            full_mask = torch.cat((mask[row_prompt], mask.new_ones(R, Tc - 1)), dim=1)  # (R, Tp + Tc - 1)
            logits, _ = self._forward(cand[:, :-1], full_mask, positions, _select_rows(cache, row_prompt))
            logp = torch.log_softmax(logits.float(), dim=-1)  # (R, Tc - 1, V)
            token_logp = logp.gather(-1, cand[:, 1:, None]).squeeze(-1)  # (R, Tc - 1)
            total = total + (token_logp * cand_mask[:, 1:]).sum(-1)  # (R,)
        for (_, i, j), value in zip(items, total.tolist(), strict=True):
            scores[i][j] = value

    # ----------------------------------------------------------------------------- other

    def token_logprobs(self, text: str) -> list[tuple[str, float | None, int]]:
        """``(token text, log-probability, character offset)`` of every token of ``text`` (no
        chat template); the first token has no context and gets ``None`` unless a BOS token
        precedes it. Used by ``qstar serve`` for ``echo`` with ``logprobs``."""
        enc = self.tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
        ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
        if not ids:
            return []
        if self.max_length is not None and len(ids) > self.max_length:
            raise ConfigError(
                f"text of {len(ids)} tokens is longer than the model's {self.max_length} positions"
            )
        self.usage.model_calls += 1
        self.usage.tokens_scored += len(ids)
        with torch.inference_mode():
            logits = self.model(input_ids=torch.tensor([ids], device=self.device)).logits[0].float()  # (T, V)
        logp = torch.log_softmax(logits[:-1], dim=-1).gather(
            -1, torch.tensor(ids[1:], device=self.device)[:, None]
        )
        values: list[float | None] = [None, *logp.squeeze(-1).tolist()]
        out = []
        for t, lp, (start, end) in zip(ids, values, offsets, strict=True):
            if start == end and t in self.tokenizer.all_special_ids:
                continue  # BOS and friends: not part of the text
            out.append((text[start:end], lp, int(start)))
        return out

    def value(self, prompts: Sequence[str]) -> list[float]:
        raise NotImplementedError(
            f"{self.name} has no value head; use --scorer verifier (tasks with a verifier), a learned "
            "scorer, or --scorer none"
        )

    def __repr__(self) -> str:
        return f"HFPolicy(name={self.name!r}, device={str(self.device)!r}, chat={self.use_chat_template})"
