"""Sharing one model among concurrent requests: a lock with per-request accounting, and a batcher.

- :class:`LockedPolicy` wraps the server's policy for one request (or for the batcher): every
  call holds the model lock, and the usage of that call is added to the wrapper's own
  :class:`~qstar.policy.base.Usage`. Searches read ``policy.usage`` before and after each call,
  so each request is charged exactly what it caused, whatever else runs at the same time.
- :class:`GenerationBatcher` collects plain generation requests (no ``reasoning``) that arrive
  within ``window_s`` of each other and sends those with equal sampling parameters to the model
  as one batched ``generate`` call. Prompts are independent rows of that call, and the built-in
  policies seed each sample by ``(seed, sample index, prompt)``, so batching never changes an
  answer that has a seed.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from qstar.policy.base import Generation, Policy, Usage

__all__ = ["LockedPolicy", "GenParams", "GenerationBatcher", "count_prompt_tokens"]

T = TypeVar("T")


class LockedPolicy:
    """``inner`` behind ``lock``, with its own usage account (see module docstring)."""

    def __init__(self, inner: Policy, lock: threading.Lock) -> None:
        self.inner = inner
        self.lock = lock
        self.name = inner.name
        self.usage = Usage()
        self.has_value_head = getattr(inner, "has_value_head", True)

    def run(self, fn: Callable[[Policy], T]) -> T:
        """``fn(inner)`` under the lock, its usage charged to this wrapper."""
        with self.lock:
            before = self.inner.usage.snapshot()
            try:
                return fn(self.inner)
            finally:
                self.usage.add_since(before, self.inner.usage)

    def generate(self, prompts: Sequence[str], **kwargs: Any) -> list[list[Generation]]:
        return self.run(lambda p: p.generate(prompts, **kwargs))

    def score(self, prompts: Sequence[str], continuations: Sequence[Sequence[str]]) -> list[list[float]]:
        return self.run(lambda p: p.score(prompts, continuations))

    def value(self, prompts: Sequence[str]) -> list[float]:
        return self.run(lambda p: p.value(prompts))


def count_prompt_tokens(policy: Policy, prompt: str) -> int | None:
    """Tokens of ``prompt`` as the built-in backends count them, or None when unknown."""
    inner = getattr(policy, "inner", policy)
    encode = getattr(inner, "_encode_prompt", None)
    if encode is None:
        return None
    try:
        return len(encode(prompt))
    except Exception:  # a prompt too long is reported by generate itself
        return None


@dataclass(frozen=True)
class GenParams:
    """Sampling parameters; requests with equal params share one ``generate`` call."""

    num_samples: int = 1
    temperature: float = 1.0
    max_new_tokens: int = 64
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass
class _Item:
    prompt: str
    params: GenParams
    future: asyncio.Future = field(repr=False)


def _settle(item: _Item, row: list[Generation] | None = None, *, error: BaseException | None = None) -> None:
    if item.future.done():  # the client went away
        return
    if error is not None:
        item.future.set_exception(error)
    else:
        item.future.set_result(row)


class GenerationBatcher:
    """Batches ``generate`` calls of concurrent requests (see module docstring).

    One worker task takes the first waiting request and keeps taking requests while they arrive
    less than ``window_s`` apart, for at most ``max_wait_s`` and ``max_batch_size`` prompts
    (under load batches fill up; a lone request waits only ``window_s``). It groups them by
    :class:`GenParams` and runs each group as one call on ``executor``. ``batch_sizes`` records
    the size of every call (for tests and stats).
    """

    def __init__(
        self,
        policy: LockedPolicy,
        executor: ThreadPoolExecutor,
        *,
        max_batch_size: int = 32,
        window_s: float = 0.005,
        max_wait_s: float = 0.05,
    ) -> None:
        self.policy = policy
        self.executor = executor
        self.max_batch_size = max_batch_size
        self.window_s = window_s
        self.max_wait_s = max_wait_s
        self.batch_sizes: list[int] = []
        self._queue: asyncio.Queue[_Item] | None = None
        self._worker: asyncio.Task | None = None

    async def generate(self, prompt: str, params: GenParams) -> list[Generation]:
        """The ``params.num_samples`` generations of one prompt, batched with other callers."""
        if self._queue is None:
            self._queue = asyncio.Queue()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._run())
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Item(prompt, params, future))
        return await future

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    async def _collect(self) -> list[_Item]:
        """The next batch: the first waiting item, then whatever keeps arriving with gaps under
        ``window_s``, for at most ``max_wait_s`` in all (a lone request waits only ``window_s``)."""
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        items = [await self._queue.get()]
        give_up = loop.time() + self.max_wait_s
        while len(items) < self.max_batch_size:
            if not self._queue.empty():
                items.append(self._queue.get_nowait())
                continue
            timeout = min(self.window_s, give_up - loop.time())
            if timeout <= 0:
                break
            try:
                items.append(await asyncio.wait_for(self._queue.get(), timeout))
            except TimeoutError:
                break
        return items

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = await self._collect()
            groups: dict[GenParams, list[_Item]] = {}
            for item in items:
                if not item.future.cancelled():
                    groups.setdefault(item.params, []).append(item)
            for params, group in groups.items():
                prompts = [item.prompt for item in group]
                self.batch_sizes.append(len(prompts))
                try:
                    rows = await loop.run_in_executor(self.executor, self._call, prompts, params)
                except Exception as err:
                    if len(group) == 1:
                        _settle(group[0], error=err)
                    else:  # one bad prompt must not fail its neighbours: retry them one by one
                        for item in group:
                            try:
                                row = (
                                    await loop.run_in_executor(
                                        self.executor, self._call, [item.prompt], params
                                    )
                                )[0]
                            except Exception as single_err:
                                _settle(item, error=single_err)
                            else:
                                _settle(item, row)
                    continue
                for item, row in zip(group, rows, strict=True):
                    _settle(item, row)

    def _call(self, prompts: list[str], params: GenParams) -> list[list[Generation]]:
        return self.policy.generate(
            prompts,
            num_samples=params.num_samples,
            temperature=params.temperature,
            max_new_tokens=params.max_new_tokens,
            stop=params.stop,
            seed=params.seed,
        )
