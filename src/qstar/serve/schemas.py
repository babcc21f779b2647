"""Request bodies of the OpenAI-compatible API, validated by pydantic, and the server's config.

Fields of the OpenAI API that qstar does not use (``top_p``, ``presence_penalty``, ``user``,
...) are accepted and ignored, as most compatible servers do. qstar's own extension is the
``reasoning`` object (sent by the stock ``openai`` client with ``extra_body``); its fields are
strict: an unknown field or mode is a 400 error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "ServeConfig",
    "ReasoningOptions",
    "ChatMessage",
    "ChatCompletionRequest",
    "CompletionRequest",
    "StreamOptions",
    "MODES",
]

#: ``reasoning.mode`` -> search name in :mod:`qstar.search.registry`.
MODES = {
    "system1": "greedy",
    "best_of_n": "best_of_n",
    "tot": "tot_bfs",
    "mcts": "mcts",
    "qstar": "qstar",
}

Mode = Literal["system1", "best_of_n", "tot", "mcts", "qstar"]


@dataclass(frozen=True)
class ServeConfig:
    """What one ``qstar serve`` process allows (limits are enforced per request).

    ``max_budget``: the largest ``reasoning.budget`` (node expansions) a request may ask for.
    ``max_search_seconds``: wall-clock limit of one search, so no request holds a worker forever.
    ``max_batch_size`` / ``batch_window_s`` / ``batch_max_wait_s``: plain generation requests
    arriving less than ``batch_window_s`` apart (for at most ``batch_max_wait_s``) are sent to
    the model as one batch of at most ``max_batch_size`` prompts.
    """

    model_name: str = "default"
    api_key: str | None = None
    scorer: str = "auto"
    default_task: str = "game24"
    default_budget: int = 64
    max_budget: int = 256
    max_search_seconds: float = 120.0
    max_tokens: int = 1024
    default_max_tokens: int = 128
    max_n: int = 16
    max_body_bytes: int = 1_000_000
    max_batch_size: int = 32
    batch_window_s: float = 0.005
    batch_max_wait_s: float = 0.05
    search_threads: int = 2
    max_trees: int = 256
    seed: int = 0


class ReasoningOptions(BaseModel):
    """``"reasoning": {"mode": "mcts", "budget": 64, "task": "game24"}``: solve the last user
    message as a problem of ``task`` with a search; ``budget`` = node expansions."""

    model_config = ConfigDict(extra="forbid")

    mode: Mode = "system1"
    budget: int | None = Field(default=None, ge=1)
    task: str | None = None
    seed: int | None = None


class StreamOptions(BaseModel):
    include_usage: bool = False


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


def _check_stop(value: str | list[str] | None) -> str | list[str] | None:
    if isinstance(value, list):
        if len(value) > 4:
            raise ValueError("at most 4 stop sequences")
        if any(not s for s in value):
            raise ValueError("stop sequences must be non-empty")
    elif value == "":
        raise ValueError("stop sequences must be non-empty")
    return value


class _Common(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    n: int = Field(default=1, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    reasoning: ReasoningOptions | None = None

    _stop = field_validator("stop")(_check_stop)

    def stop_list(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


class ChatCompletionRequest(_Common):
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool = False

    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(_Common):
    prompt: str | list[str]
    max_tokens: int | None = Field(default=16, ge=0)
    logprobs: int | None = Field(default=None, ge=0, le=5)
    echo: bool = False

    @field_validator("prompt")
    @classmethod
    def _non_empty_list(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and not value:
            raise ValueError("prompt list must not be empty")
        return value

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)

    def requested_max_tokens(self) -> int | None:
        return self.max_tokens
