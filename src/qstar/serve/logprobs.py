"""Per-token log-probabilities of a given text, for ``/v1/completions`` with ``echo`` + ``logprobs``.

This is how an OpenAI-compatible client scores text (the legacy completions API: send
``prompt + continuation`` with ``max_tokens=0, echo=true, logprobs=0`` and sum the
``token_logprobs`` past the prompt). :class:`~qstar.policy.openai_http.OpenAIPolicy.score` uses
it, so qstar's own server supports it for the built-in backends: the tiny GPT and ``hf:``
models. Other backends get a 400 error saying so.

Generated text is reported differently: the policies return one summed log-probability per
completion, so a completion's ``logprobs`` hold the whole completion as one entry whose
log-probability is that sum (clients that add up ``token_logprobs`` get the right total).
"""

from __future__ import annotations

import torch

from qstar.errors import ConfigError
from qstar.policy.base import Policy

__all__ = ["TokenLogprob", "text_token_logprobs"]

TokenLogprob = tuple[str, float | None, int]  # (token text, log-probability, character offset)


def _tinygpt_token_logprobs(policy, text: str) -> list[TokenLogprob]:
    tok = policy.tokenizer
    ids = policy._encode_prompt(text)  # <bos> + tokens; raises ConfigError past block_size
    policy.usage.model_calls += 1
    policy.usage.tokens_scored += len(ids) - 1
    with torch.inference_mode():
        logits = policy.model(torch.tensor([ids], device=policy.device)).logits[0].float()  # (T, V)
    logp = torch.log_softmax(logits[:-1], dim=-1)  # (T - 1, V): prediction of token t + 1
    values = logp.gather(-1, torch.tensor(ids[1:], device=policy.device)[:, None]).squeeze(-1).tolist()
    out, offset = [], 0
    for t, lp in zip(ids[1:], values, strict=True):
        piece = tok.decode_token(t)
        out.append((piece, lp, offset))
        offset += len(piece)
    return out


def text_token_logprobs(policy: Policy, text: str) -> list[TokenLogprob]:
    """``(token, logprob, offset)`` for every token of ``text`` (call with the model lock held)."""
    from qstar.policy.tinygpt.policy import TinyGPTPolicy

    if hasattr(policy, "token_logprobs"):
        return list(policy.token_logprobs(text))
    if isinstance(policy, TinyGPTPolicy):
        return _tinygpt_token_logprobs(policy, text)
    raise ConfigError(
        f"model {policy.name!r} cannot report log-probabilities of given text, so 'echo' with "
        "'logprobs' is not supported by this server"
    )
