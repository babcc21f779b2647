"""Any OpenAI-compatible server as a :class:`~qstar.policy.base.Policy` (extra ``[openai]``).

``--model openai:NAME --base-url URL`` (completions endpoint) or ``openai-chat:NAME`` (chat
endpoint) talks to vLLM, SGLang, llama.cpp's server, Ollama, qstar's own ``qstar serve`` or
OpenAI. The key comes from ``api_key``, else ``$OPENAI_API_KEY``, else ``$QSTAR_API_KEY`` (none
is sent when none is set); the URL from ``base_url``, else ``$QSTAR_BASE_URL``, else
``$OPENAI_BASE_URL``, else ``https://api.openai.com/v1``.

Requests. ``generate`` sends one request per distinct prompt with ``n = num_samples`` times
the prompt's copies in the call (one request with ``n=1`` at ``temperature=0``, its answer
repeated), so sibling paths at the same state share one request; a server that returns fewer choices than ``n``
(llama.cpp, Ollama) is asked again for the rest. Requests run concurrently, at most
``max_concurrency`` at a time, each with a ``timeout``; HTTP 429, 5xx and network errors are
retried ``max_retries`` times with exponential backoff (``backoff_s * 2**attempt``, plus jitter,
at most ``max_backoff_s``; a ``Retry-After`` header is honoured up to that cap).

Stop strings. The ``stop`` list goes to the server (at most 4, the API's limit) *and* is applied
again to the text that comes back, because some servers ignore ``stop``: a step never contains
a stop string. The log-probability then covers the tokens up to and including the one that
completed the stop string.

Log-probabilities. When the server returns them (``logprobs``), a generation's ``logprob`` is
their sum. **Fallback** when it does not (the server omits them or rejects the parameter, after
which they are no longer asked for): ``logprob`` is 0.0 for every generation and
``logprobs_available`` becomes False, so searches weigh distinct sampled steps equally (their
prior is uniform). ``score`` needs the legacy completions API's ``echo`` with ``logprobs``
(vLLM and ``qstar serve`` support it): ``prompt + continuation`` is sent with ``max_tokens=0``
(retried with 1 if the server insists) and the log-probabilities of the tokens past the prompt
are summed. A chat endpoint, or a server without echo, cannot score: ``score`` raises
:class:`OpenAIBackendError`. Searches over enumerable steps (Game of 24's ToT, MCTS, Q*) need
``score``; searches over sampled lines (greedy, best-of-N, and every search on open-ended tasks
such as GSM8K) need only ``generate``.

Accounting. ``usage`` counts one model call per HTTP request and the server's ``usage``
(``prompt_tokens``, ``completion_tokens``): what was actually billed, including text cut off
after a stop string. A server that reports no usage is counted from the returned log-prob
tokens, else estimated at 4 characters per token (``usage_estimated`` becomes True). A
generation's ``num_tokens`` is the server's ``completion_tokens`` when a request returned one
choice and nothing was cut, else the number of log-prob tokens kept (estimated without them).

There is no value head: ``has_value_head`` is False and ``value`` raises NotImplementedError.
"""

from __future__ import annotations

import math
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from qstar.errors import ConfigError, QstarError, require_extra
from qstar.policy.base import Generation, Usage, check_generate_args

__all__ = ["OpenAIPolicy", "OpenAIBackendError", "DEFAULT_BASE_URL"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_STOP = 4


class OpenAIBackendError(QstarError, RuntimeError):
    """The server failed (after retries) or cannot do what was asked."""


def _error_message(response: Any) -> str:
    try:
        body = response.json()
        return str(body.get("error", {}).get("message") or body)[:300]
    except Exception:
        return response.text[:300]


def _tokens_of(choice: dict[str, Any]) -> list[tuple[str, float | None, int]] | None:
    """``(token, logprob, offset)`` of a choice, from either API's logprobs format, or None."""
    lp = choice.get("logprobs")
    if not lp:
        return None
    if "content" in lp:  # chat: [{"token", "logprob"}, ...]
        entries = lp.get("content") or []
        tokens, offset = [], 0
        for e in entries:
            tokens.append((e.get("token", ""), e.get("logprob"), offset))
            offset += len(e.get("token", ""))
        return tokens
    texts, values = lp.get("tokens"), lp.get("token_logprobs")
    if texts is None or values is None:
        return None
    offsets = lp.get("text_offset")
    if offsets is None or len(offsets) != len(texts):
        offsets, at = [], 0
        for t in texts:
            offsets.append(at)
            at += len(t)
    return list(zip(texts, values, offsets, strict=True))


class OpenAIPolicy:
    """A model behind an OpenAI-compatible HTTP API (see module docstring)."""

    has_value_head = False

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        style: str = "completion",
        max_concurrency: int = 8,
        timeout_s: float = 60.0,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 20.0,
        request_logprobs: bool = True,
        extra_body: dict[str, Any] | None = None,
        name: str | None = None,
        transport: Any = None,
    ) -> None:
        httpx = require_extra("httpx", "openai")
        if style not in ("completion", "chat"):
            raise ConfigError(f"style must be 'completion' or 'chat', got {style!r}")
        if not model:
            raise ConfigError("openai backend: the model name is empty (use --model openai:NAME)")
        if max_concurrency < 1 or max_retries < 0 or timeout_s <= 0:
            raise ConfigError(
                "openai backend: max_concurrency >= 1, max_retries >= 0 and timeout_s > 0 please"
            )
        self.model = model
        self.style = style
        self.name = name or f"{'openai' if style == 'completion' else 'openai-chat'}:{model}"
        self.base_url = (
            base_url
            or os.environ.get("QSTAR_BASE_URL")
            or os.environ.get("OPENAI_BASE_URL")
            or DEFAULT_BASE_URL
        ).rstrip("/")
        key = api_key or os.environ.get("OPENAI_API_KEY") or os.environ.get("QSTAR_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.request_logprobs = request_logprobs
        self.extra_body = dict(extra_body or {})
        self.usage = Usage()
        self.num_requests = 0
        self.num_retries = 0
        self.logprobs_available = True
        self.usage_estimated = False
        self._score_max_tokens = 0
        self._lock = threading.Lock()
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=max_concurrency),
            transport=transport,
        )
        self._pool = ThreadPoolExecutor(max_concurrency, thread_name_prefix="qstar-openai")

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self._client.close()

    # ----------------------------------------------------------------------------- HTTP

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST with retries on 429/5xx/network errors; a 4xx is an error at once."""
        httpx = require_extra("httpx", "openai")
        for attempt in range(self.max_retries + 1):
            with self._lock:
                self.num_requests += 1
                self.usage.model_calls += 1
            wait = None
            try:
                response = self._client.post(path, json={**body, **self.extra_body})
            except httpx.TransportError as err:  # timeouts, refused connections, resets
                failure = f"{type(err).__name__}: {err}"
            else:
                if response.status_code < 400:
                    return response.json()
                failure = f"HTTP {response.status_code}: {_error_message(response)}"
                if response.status_code not in RETRY_STATUS:
                    raise OpenAIBackendError(f"{self.base_url}{path} rejected the request ({failure})")
                retry_after = response.headers.get("retry-after", "")
                wait = float(retry_after) if retry_after.replace(".", "", 1).isdigit() else None
            if attempt == self.max_retries:
                break
            delay = min(self.max_backoff_s, wait if wait is not None else self.backoff_s * 2**attempt)
            with self._lock:
                self.num_retries += 1
            time.sleep(delay * (1.0 + 0.25 * random.random()))
        raise OpenAIBackendError(
            f"{self.base_url}{path} failed after {self.max_retries + 1} attempts ({failure})"
        )

    def _account(self, response: dict[str, Any], prompt_chars: int, completion_tokens_fallback: int) -> None:
        usage = response.get("usage") or {}
        with self._lock:
            if "prompt_tokens" in usage:
                self.usage.tokens_prompt += int(usage.get("prompt_tokens") or 0)
                self.usage.tokens_generated += int(usage.get("completion_tokens") or 0)
            else:
                self.usage_estimated = True
                self.usage.tokens_prompt += math.ceil(prompt_chars / 4)
                self.usage.tokens_generated += completion_tokens_fallback

    # ----------------------------------------------------------------------------- generate

    def _request(self, prompt: str, n: int, params: dict[str, Any]) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"model": self.model, "n": n, **params}
        if self.style == "chat":
            path, body["messages"] = "/chat/completions", [{"role": "user", "content": prompt}]
            if self.request_logprobs:
                body["logprobs"] = True
        else:
            path, body["prompt"] = "/completions", prompt
            if self.request_logprobs:
                body["logprobs"] = 1
        try:
            response = self._post(path, body)
        except OpenAIBackendError as err:
            if self.request_logprobs and "logprob" in str(err).lower():  # the server rejects logprobs
                self.request_logprobs = False
                return self._request(prompt, n, params)
            raise
        choices = sorted(response.get("choices") or [], key=lambda c: c.get("index", 0))
        fallback = 0
        for c in choices:
            tokens = _tokens_of(c)
            text = self._text_of(c)
            fallback += len(tokens) if tokens is not None else math.ceil(len(text) / 4)
        self._account(response, len(prompt), fallback)
        completion_tokens = (response.get("usage") or {}).get("completion_tokens")
        if len(choices) == 1 and completion_tokens is not None:  # the server's count is exact
            choices[0]["_num_tokens"] = int(completion_tokens)
        return choices

    def _text_of(self, choice: dict[str, Any]) -> str:
        if self.style == "chat":
            return (choice.get("message") or {}).get("content") or ""
        return choice.get("text") or ""

    def _generation(self, choice: dict[str, Any], stop: tuple[str, ...]) -> Generation:
        text = self._text_of(choice)
        tokens = _tokens_of(choice)
        if tokens is None:
            self.logprobs_available = False
        hits = [(i, s) for s in stop if (i := text.find(s)) >= 0]
        if hits:  # the server ignored the stop string: cut the text ourselves
            cut, hit = min(hits)
            end = cut + len(hit)
            text = text[:cut]
            kept = [t for t in tokens if t[2] < end] if tokens is not None else None
            finished = True
        else:
            kept = tokens
            finished = choice.get("finish_reason") != "length"
        if not hits and "_num_tokens" in choice:
            num_tokens = choice["_num_tokens"]
        else:
            num_tokens = len(kept) if kept is not None else math.ceil(len(text) / 4)
        logprob = 0.0 if kept is None else float(sum(lp for _, lp, _ in kept if lp is not None))
        return Generation(text, logprob, num_tokens, finished)

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
        params: dict[str, Any] = {"max_tokens": max_new_tokens, "temperature": float(temperature)}
        if stop:
            params["stop"] = list(stop[:MAX_STOP])
        if seed is not None:
            params["seed"] = int(seed) % (2**63)  # the API takes a signed 64-bit seed
        if top_k is not None:
            params["top_k"] = top_k  # vLLM/SGLang extension; OpenAI itself has no top_k
        # The same prompt twice in one call (sibling paths of a search at the same state) is one
        # request for all their samples: the server reads the prompt once.
        copies = Counter(prompts)

        def one(prompt: str) -> list[Generation]:
            wanted = 1 if temperature == 0 else num_samples * copies[prompt]
            gens: list[Generation] = []
            for _ in range(wanted):  # servers without ``n`` give one choice per request
                choices = self._request(prompt, wanted - len(gens), params)
                if not choices:
                    raise OpenAIBackendError(f"{self.base_url}: the server returned no choices")
                gens += [self._generation(c, stop) for c in choices[: wanted - len(gens)]]
                if len(gens) >= wanted:
                    break
            return gens if temperature > 0 else gens[:1] * (num_samples * copies[prompt])

        pools = dict(zip(copies, self._pool.map(one, list(copies)), strict=True))
        out = []
        for prompt in prompts:
            out.append(pools[prompt][:num_samples])
            pools[prompt] = pools[prompt][num_samples:]
        return out

    # ----------------------------------------------------------------------------- score

    def score(self, prompts: Sequence[str], continuations: Sequence[Sequence[str]]) -> list[list[float]]:
        """Summed log-probability of each continuation after its prompt, by ``echo`` (module
        docstring); one request per prompt carrying all its candidates."""
        if len(prompts) != len(continuations) or any(isinstance(c, str) for c in continuations):
            raise ConfigError("score() needs one list of continuation strings per prompt")
        if self.style == "chat":
            raise OpenAIBackendError(
                f"{self.name}: a chat endpoint cannot score given text; use --model openai:NAME (the "
                "completions endpoint with echo + logprobs, e.g. vLLM) or a search over sampled steps"
            )
        return list(self._pool.map(lambda pc: self._score_one(*pc), zip(prompts, continuations, strict=True)))

    def _score_one(self, prompt: str, candidates: Sequence[str]) -> list[float]:
        asked = [c for c in candidates if c]
        if not asked:
            return [0.0] * len(candidates)
        texts = [prompt + c for c in asked]
        body = {"model": self.model, "prompt": texts, "echo": True, "logprobs": 0, "temperature": 0.0}
        try:
            response = self._post("/completions", {**body, "max_tokens": self._score_max_tokens})
        except OpenAIBackendError as err:
            if self._score_max_tokens != 0 or "400" not in str(err):
                raise
            self._score_max_tokens = 1  # some servers refuse max_tokens=0; the extra token is ignored
            response = self._post("/completions", {**body, "max_tokens": 1})
        choices = sorted(response.get("choices") or [], key=lambda c: c.get("index", 0))
        if len(choices) != len(texts):
            raise OpenAIBackendError(
                f"{self.base_url}: asked to score {len(texts)} texts, got {len(choices)} answers"
            )
        values, scored = [], 0
        for text, choice in zip(texts, choices, strict=True):
            tokens = _tokens_of(choice)
            if tokens is None or not tokens:
                raise OpenAIBackendError(
                    f"{self.name}: the server returned no prompt log-probabilities for echo=true; it cannot "
                    "score text (vLLM and qstar serve can). Use a search over sampled steps instead"
                )
            # Tokens that end past the prompt belong to the continuation (a token straddling the
            # boundary is counted with it); the generated extra token, if any, starts at len(text).
            mine = [lp for tok, lp, off in tokens if off + len(tok) > len(prompt) and off < len(text)]
            values.append(float(sum(lp for lp in mine if lp is not None)))
            scored += len(mine)
        usage = response.get("usage") or {}
        with self._lock:
            self.usage.tokens_scored += scored
            self.usage.tokens_prompt += max(0, int(usage.get("prompt_tokens") or 0) - scored)
        it = iter(values)
        return [next(it) if c else 0.0 for c in candidates]

    def value(self, prompts: Sequence[str]) -> list[float]:
        raise NotImplementedError(f"{self.name} has no value head; use another --scorer")

    def __repr__(self) -> str:
        return f"OpenAIPolicy(name={self.name!r}, base_url={self.base_url!r}, style={self.style!r})"
