"""The OpenAI-compatible HTTP API of ``qstar serve`` (FastAPI).

Endpoints: ``GET /v1/models``, ``POST /v1/chat/completions``, ``POST /v1/completions`` (both
streaming with server-sent events or not, ``usage`` filled in), ``GET /v1/trees/{tree_id}``
(the search tree of a reasoning request, ``qstar.tree/1`` JSON) and ``GET /health``.

Without ``reasoning`` a request is plain generation: chat messages are joined into one prompt
(one message: its text; several: their texts, one per line), and requests from concurrent
clients are batched into shared ``generate`` calls (:mod:`qstar.serve.batching`). With
``reasoning`` the problem is searched (:mod:`qstar.serve.reasoning`) in a worker thread.
Streaming sends whole completions (plain) or one reasoning step per chunk, not single tokens:
the answer is complete before the first chunk, so a stream never breaks off with an error.

Every request a client can get wrong is a 4xx with an OpenAI-style error object
(:mod:`qstar.serve.errors`); the server binds 127.0.0.1 by default and checks
``Authorization: Bearer <key>`` when started with an API key.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

from qstar.policy.base import Generation, Policy
from qstar.serve.batching import GenerationBatcher, GenParams, LockedPolicy, count_prompt_tokens
from qstar.serve.errors import APIError, BodyLimitMiddleware, install_error_handlers
from qstar.serve.logprobs import TokenLogprob, text_token_logprobs
from qstar.serve.reasoning import ReasoningReply, TreeStore, run_reasoning
from qstar.serve.schemas import ChatCompletionRequest, ChatMessage, CompletionRequest, ServeConfig

__all__ = ["create_app", "ServerState"]


class ServerState:
    """One model shared by all requests: its lock, the batcher, the search threads, the trees."""

    def __init__(self, policy: Policy, config: ServeConfig) -> None:
        self.policy = policy
        self.config = config
        self.lock = threading.Lock()
        self.model_executor = ThreadPoolExecutor(1, thread_name_prefix="qstar-model")
        self.search_executor = ThreadPoolExecutor(config.search_threads, thread_name_prefix="qstar-search")
        self.batcher = GenerationBatcher(
            LockedPolicy(policy, self.lock),
            self.model_executor,
            max_batch_size=config.max_batch_size,
            window_s=config.batch_window_s,
            max_wait_s=config.batch_max_wait_s,
        )
        self.trees = TreeStore(config.max_trees)
        self.created = int(time.time())

    async def close(self) -> None:
        await self.batcher.close()
        self.model_executor.shutdown(wait=False, cancel_futures=True)
        self.search_executor.shutdown(wait=False, cancel_futures=True)


# -- request checks ----------------------------------------------------------------------------
def _check_common(req: ChatCompletionRequest | CompletionRequest, config: ServeConfig) -> int:
    """Server limits of a request; returns its max_tokens."""
    if req.n > config.max_n:
        raise APIError(400, f"n: {req.n} is over this server's maximum of {config.max_n}", param="n")
    asked = req.requested_max_tokens()
    max_tokens = min(config.default_max_tokens, config.max_tokens) if asked is None else asked
    if max_tokens > config.max_tokens:
        raise APIError(
            400,
            f"max_tokens: {max_tokens} is over this server's maximum of {config.max_tokens}",
            param="max_tokens",
        )
    if req.reasoning is not None:
        budget = req.reasoning.budget
        if budget is not None and budget > config.max_budget:
            raise APIError(
                400,
                f"reasoning.budget: {budget} is over this server's maximum of {config.max_budget} "
                "(qstar serve --max-budget)",
                param="reasoning.budget",
            )
        if req.n != 1:
            raise APIError(400, "n: a reasoning request returns one answer; use n=1", param="n")
    return max_tokens


def _problem_text(messages: Sequence[ChatMessage]) -> str:
    users = [m for m in messages if m.role == "user"]
    text = users[-1].text().strip() if users else ""
    if not text:
        raise APIError(
            400, "messages: a reasoning request needs a user message holding the problem", param="messages"
        )
    return text


def _chat_prompt(messages: Sequence[ChatMessage]) -> str:
    if len(messages) == 1:
        return messages[0].text()
    return "\n".join(m.text() for m in messages if m.text())


# -- response pieces ---------------------------------------------------------------------------
def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _finish(gen: Generation) -> str:
    return "stop" if gen.finished else "length"


def _chat_logprobs(gen: Generation) -> dict[str, Any]:
    entry = {"token": gen.text, "logprob": gen.logprob, "bytes": list(gen.text.encode()), "top_logprobs": []}
    return {"content": [entry] if gen.num_tokens else []}


def _completion_logprobs(echo: list[TokenLogprob], gen: Generation | None, offset: int) -> dict[str, Any]:
    tokens = [t for t, _, _ in echo]
    values: list[float | None] = [lp for _, lp, _ in echo]
    offsets = [o for _, _, o in echo]
    if gen is not None and gen.num_tokens:
        tokens.append(gen.text)
        values.append(gen.logprob)
        offsets.append(offset)
    return {"tokens": tokens, "token_logprobs": values, "top_logprobs": None, "text_offset": offsets}


def _chat_chunk(
    head: dict[str, Any], index: int, delta: dict[str, Any], finish: str | None = None, logprobs: Any = None
) -> dict[str, Any]:
    choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
    return {**head, "object": "chat.completion.chunk", "choices": [choice]}


def _sse(chunks: list[dict[str, Any]]) -> StreamingResponse:
    async def events() -> AsyncIterator[str]:
        for chunk in chunks:
            yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


# -- the app -----------------------------------------------------------------------------------
def create_app(policy: Policy, config: ServeConfig | None = None) -> FastAPI:
    """The API serving ``policy`` under ``config`` (see module docstring)."""
    config = config or ServeConfig()
    state = ServerState(policy, config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await state.close()

    app = FastAPI(title="qstar", description="OpenAI-compatible reasoning server", lifespan=lifespan)
    app.state.qstar = state
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_body_bytes)

    async def authorize(request: Request) -> None:
        if config.api_key is None:
            return
        sent = request.headers.get("authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {config.api_key}".encode()):
            raise APIError(
                401, "invalid or missing API key (send 'Authorization: Bearer <key>')", code="invalid_api_key"
            )

    async def reason(problem: str, req: ChatCompletionRequest | CompletionRequest) -> ReasoningReply:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            state.search_executor,
            lambda: run_reasoning(
                policy, state.lock, problem, req.reasoning, config, state.trees, seed=req.seed
            ),
        )

    def params(req: ChatCompletionRequest | CompletionRequest, max_tokens: int) -> GenParams:
        # Greedy decoding ignores the seed, so greedy requests batch whatever seed they send.
        seed = None if req.temperature == 0 else req.seed
        return GenParams(req.n, req.temperature, max_tokens, req.stop_list(), seed)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "model": config.model_name}

    @app.get("/v1/models", dependencies=[Depends(authorize)])
    async def models() -> dict[str, Any]:
        card = {"id": config.model_name, "object": "model", "created": state.created, "owned_by": "qstar"}
        return {"object": "list", "data": [card]}

    @app.post("/v1/chat/completions", dependencies=[Depends(authorize)])
    async def chat_completions(req: ChatCompletionRequest) -> Any:
        max_tokens = _check_common(req, config)
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        head = {"id": cid, "created": created, "model": config.model_name}
        if req.reasoning is not None:
            reply = await reason(_problem_text(req.messages), req)
            usage = _usage(reply.prompt_tokens, reply.completion_tokens)
            if req.stream:
                pieces = [line + "\n" for line in reply.steps] + [reply.content.rsplit("\n", 1)[-1]]
                chunks = [_chat_chunk(head, 0, {"role": "assistant", "content": ""})]
                chunks += [_chat_chunk(head, 0, {"content": p}) for p in pieces]
                chunks.append({**_chat_chunk(head, 0, {}, reply.finish_reason), "qstar": reply.qstar})
                if req.stream_options and req.stream_options.include_usage:
                    chunks.append({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage})
                return _sse(chunks)
            message = {"role": "assistant", "content": reply.content}
            choice = {"index": 0, "message": message, "finish_reason": reply.finish_reason, "logprobs": None}
            return {
                **head,
                "object": "chat.completion",
                "choices": [choice],
                "usage": usage,
                "qstar": reply.qstar,
            }

        prompt = _chat_prompt(req.messages)
        gens = await state.batcher.generate(prompt, params(req, max_tokens))
        usage = _usage(count_prompt_tokens(policy, prompt) or 0, sum(g.num_tokens for g in gens))
        if req.stream:
            chunks = []
            for i, g in enumerate(gens):
                lp = _chat_logprobs(g) if req.logprobs else None
                chunks += [
                    _chat_chunk(head, i, {"role": "assistant", "content": ""}),
                    _chat_chunk(head, i, {"content": g.text}, logprobs=lp),
                    _chat_chunk(head, i, {}, _finish(g)),
                ]
            if req.stream_options and req.stream_options.include_usage:
                chunks.append({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage})
            return _sse(chunks)
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": g.text},
                "finish_reason": _finish(g),
                "logprobs": _chat_logprobs(g) if req.logprobs else None,
            }
            for i, g in enumerate(gens)
        ]
        return {**head, "object": "chat.completion", "choices": choices, "usage": usage}

    @app.post("/v1/completions", dependencies=[Depends(authorize)])
    async def completions(req: CompletionRequest) -> Any:
        max_tokens = _check_common(req, config)
        cid, created = f"cmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        head = {"id": cid, "object": "text_completion", "created": created, "model": config.model_name}
        prompts = req.prompts()
        if req.reasoning is not None:
            if len(prompts) != 1:
                raise APIError(400, "prompt: a reasoning request takes one problem", param="prompt")
            reply = await reason(prompts[0], req)
            choice = {
                "index": 0,
                "text": reply.content,
                "finish_reason": reply.finish_reason,
                "logprobs": None,
            }
            usage = _usage(reply.prompt_tokens, reply.completion_tokens)
            if req.stream:
                chunks = [
                    {**head, "choices": [{**choice, "finish_reason": None}]},
                    {**head, "choices": [{**choice, "text": ""}], "qstar": reply.qstar},
                ]
                if req.stream_options and req.stream_options.include_usage:
                    chunks.append({**head, "choices": [], "usage": usage})
                return _sse(chunks)
            return {**head, "choices": [choice], "usage": usage, "qstar": reply.qstar}

        echoes: list[list[TokenLogprob]] = [[] for _ in prompts]
        if req.echo and req.logprobs is not None:
            model = LockedPolicy(policy, state.lock)
            loop = asyncio.get_running_loop()
            echoes = await loop.run_in_executor(
                state.model_executor,
                lambda: [model.run(lambda p, t=t: text_token_logprobs(p, t)) for t in prompts],
            )
        if max_tokens > 0:
            rows = await asyncio.gather(
                *(state.batcher.generate(p, params(req, max_tokens)) for p in prompts)
            )
        else:  # echo only: the prompt, nothing generated
            rows = [[Generation("", 0.0, 0, True)] * req.n for _ in prompts]
        choices = []
        for prompt, echo, gens in zip(prompts, echoes, rows, strict=True):
            for g in gens:
                text = prompt + g.text if req.echo else g.text
                lp = None
                if req.logprobs is not None:
                    lp = _completion_logprobs(echo, g, len(prompt) if req.echo else 0)
                choices.append(
                    {"index": len(choices), "text": text, "finish_reason": _finish(g), "logprobs": lp}
                )
        prompt_tokens = sum(count_prompt_tokens(policy, p) or 0 for p in prompts)
        usage = _usage(prompt_tokens, sum(g.num_tokens for gens in rows for g in gens))
        if req.stream:
            chunks = []
            for c in choices:
                chunks.append({**head, "choices": [{**c, "finish_reason": None}]})
                chunks.append({**head, "choices": [{**c, "text": "", "logprobs": None}]})
            if req.stream_options and req.stream_options.include_usage:
                chunks.append({**head, "choices": [], "usage": usage})
            return _sse(chunks)
        return {**head, "choices": choices, "usage": usage}

    @app.get("/v1/trees/{tree_id}", dependencies=[Depends(authorize)])
    async def get_tree(tree_id: str) -> JSONResponse:
        tree = state.trees.get(tree_id)
        if tree is None:
            raise APIError(
                404,
                f"no tree {tree_id!r} (trees are kept in memory for the last "
                f"{config.max_trees} reasoning requests)",
                code="tree_not_found",
            )
        return JSONResponse(tree)

    @app.get("/trees/{tree_id}", response_class=HTMLResponse, dependencies=[Depends(authorize)])
    async def view_tree(tree_id: str) -> HTMLResponse:
        tree = state.trees.get(tree_id)
        if tree is None:
            raise APIError(404, f"no tree {tree_id!r}", code="tree_not_found")
        return HTMLResponse(_tree_page(tree, tree_id))

    return app


def _tree_page(tree: dict[str, Any], tree_id: str) -> str:
    """The tree viewer page (:mod:`qstar.viewer`) reading ``/v1/trees/{tree_id}``; plain JSON in
    a page when the viewer is not installed."""
    try:
        from qstar.viewer import page_html
    except ImportError:
        body = json.dumps(tree, indent=1, ensure_ascii=False).replace("&", "&amp;").replace("<", "&lt;")
        return f"<!doctype html><title>{tree_id}</title><pre>{body}</pre>"
    problem = tree.get("problem", {}).get("text", "")
    return page_html(tree_url=f"/v1/trees/{tree_id}", title=f"qstar: {tree.get('method', '')} on {problem}")
