"""Settings of :mod:`qstar.training.distill`: :class:`DistillConfig`, the trace formats and
the modes a student is measured in."""

from __future__ import annotations

from dataclasses import dataclass

from qstar.errors import ConfigError
from qstar.search.checks import check_int
from qstar.search.scan import ScanTeacherConfig, scan_prompt
from qstar.search.stream import StreamConfig, StreamTeacherConfig, stream_prompt
from qstar.training.precision import check_precision

__all__ = ["DistillConfig", "FORMATS", "STUDENT_MODES", "STREAM_KNOBS", "PROMPTS"]

#: What :func:`evaluate_student` measures: System 1 with search in context (one greedy decode
#: of a trace; ``stream_legal``: the same, one legal line at a time; ``stream_legal_mass``: that,
#: going back only when ``back`` outweighs all step lines together; ``scan``: one greedy decode
#: of a written lookahead), System 1 without it (greedy, one step per line) and System 2 (Q*).
STUDENT_MODES = ("stream", "stream_legal", "stream_legal_mass", "scan", "greedy", "qstar")
#: The stream knobs of the ``stream_legal*`` modes.
STREAM_KNOBS = {"stream_legal": {"lines": "legal"}, "stream_legal_mass": {"lines": "legal", "back": "mass"}}
#: The trace formats a student can be taught: the teacher search that writes each, its prompt,
#: and the modes :func:`evaluate_student` measures by default for a student of that format.
FORMATS = {
    "stream": ("stream_teacher", stream_prompt, ("stream", "stream_legal", "greedy", "qstar")),
    "scan": ("scan_teacher", scan_prompt, ("scan", "greedy", "qstar")),
}


@dataclass(frozen=True)
class DistillConfig:
    """Settings of :func:`distill`.

    ``traces_per_problem`` teacher runs per train problem (different Gumbel orders);
    ``teacher_temperature``, ``value_threshold``, ``explore``, ``max_lines``, ``teacher_order``
    (``order``): the teacher's knobs; ``teacher_judge``: what values its states, ``value`` (the
    init model's value head) or ``lookahead`` (one-step lookahead over that head,
    :class:`~qstar.rewards.lookahead.LookaheadScorer`)
    (:class:`~qstar.search.stream.StreamTeacherConfig`); ``teacher_budget``: expansions per
    teacher run; ``block_size``: the student's context (traces are longer than one step);
    ``keep_plain``/``keep_values``: the extra examples of the module docstring;
    ``judge_weight``: weight of the written-judgement loss (:func:`judge_examples`; 0 = off,
    stream format only); ``grow_layers``: transformer blocks added on top of the init model's
    before fine-tuning, each starting as the identity
    (:func:`~qstar.policy.tinygpt.model.with_extra_layers`), for a deeper student than its
    teacher.

    ``teacher``: ``search`` (the teacher search of the format writes the traces) or ``self``
    (stream format only: the ``init`` model writes them itself, one legal line at a time,
    sampled at ``teacher_temperature``, :class:`~qstar.search.stream.StreamConfig`; only the
    verified ones are kept, so a pass is STaR, Zelikman et al. 2022, on written searches).

    ``format``: ``stream`` (Stream of Search, :mod:`qstar.search.stream`) or ``scan`` (a
    written lookahead, :mod:`qstar.search.scan`: every first step judged in writing, then the
    best picked; its teacher is deterministic, so one trace per problem, and it reads
    ``max_picks``, ``finish_budget`` and ``short_lines``, see
    :class:`~qstar.search.scan.ScanTeacherConfig`)."""

    format: str = "stream"
    traces_per_problem: int = 4
    teacher_temperature: float = 1.5
    value_threshold: float = 0.5
    explore: float = 0.0
    max_lines: int = 14
    teacher_budget: int = 64
    block_size: int = 768
    steps: int = 2000
    batch_size: int = 32
    lr: float = 1e-3
    keep_plain: bool = True
    keep_values: bool = True
    workers: int = 1
    seed: int = 0
    max_picks: int = 6
    finish_budget: int = 4
    short_lines: bool = True
    judge_weight: float = 0.0
    teacher: str = "search"
    teacher_order: str = "prior"
    teacher_judge: str = "value"
    grow_layers: int = 0
    precision: str = "fp32"

    def __post_init__(self) -> None:
        check_precision("DistillConfig", self.precision)
        if self.format not in FORMATS:
            raise ConfigError(
                f"DistillConfig.format must be one of {', '.join(FORMATS)}, got {self.format!r}"
            )
        for name in (
            "traces_per_problem",
            "max_picks",
            "finish_budget",
            "max_lines",
            "teacher_budget",
            "block_size",
            "steps",
            "batch_size",
            "workers",
        ):
            check_int("DistillConfig", name, getattr(self, name))
        check_int("DistillConfig", "grow_layers", self.grow_layers, minimum=0)
        for name in ("value_threshold", "explore"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"DistillConfig.{name} must be in [0, 1], got {getattr(self, name)!r}")
        if not (self.teacher_temperature >= 0 and self.lr > 0):
            raise ConfigError("DistillConfig: teacher_temperature must be >= 0 and lr > 0")
        if not self.judge_weight >= 0:
            raise ConfigError(f"DistillConfig.judge_weight must be >= 0, got {self.judge_weight!r}")
        if self.judge_weight > 0 and self.format != "stream":
            raise ConfigError(
                "DistillConfig.judge_weight needs format 'stream' (a scan trace has no back lines)"
            )
        if self.teacher_judge not in ("value", "lookahead"):
            raise ConfigError(
                f"DistillConfig.teacher_judge must be 'value' or 'lookahead', got {self.teacher_judge!r}"
            )
        if self.teacher_order not in ("prior", "value"):
            raise ConfigError(
                f"DistillConfig.teacher_order must be 'prior' or 'value', got {self.teacher_order!r}"
            )
        if self.teacher not in ("search", "self"):
            raise ConfigError(f"DistillConfig.teacher must be 'search' or 'self', got {self.teacher!r}")
        if self.teacher == "self" and self.format != "stream":
            raise ConfigError("DistillConfig.teacher 'self' needs format 'stream' (the model writes streams)")
        if self.teacher == "self" and self.teacher_temperature == 0 and self.traces_per_problem > 1:
            raise ConfigError(
                "DistillConfig: a 'self' teacher at temperature 0 writes the same trace every time; "
                "set traces_per_problem to 1 or the temperature above 0"
            )

    def teacher_config(self) -> StreamTeacherConfig | ScanTeacherConfig | StreamConfig:
        """The config of the teacher search (:attr:`teacher_search`)."""
        if self.teacher == "self":
            return StreamConfig(lines="legal", temperature=self.teacher_temperature)
        if self.format == "scan":
            return ScanTeacherConfig(
                max_picks=self.max_picks, finish_budget=self.finish_budget, short_lines=self.short_lines
            )
        return StreamTeacherConfig(
            temperature=self.teacher_temperature,
            value_threshold=self.value_threshold,
            explore=self.explore,
            max_lines=self.max_lines,
            order=self.teacher_order,
        )

    @property
    def teacher_search(self) -> str:
        """The registered search that writes the teacher's traces."""
        return "stream" if self.teacher == "self" else FORMATS[self.format][0]

    @property
    def samples(self) -> int:
        """Teacher runs per problem: ``traces_per_problem``, or 1 for the deterministic scan."""
        return 1 if self.format == "scan" else self.traces_per_problem


#: The prompt each teacher search writes its trace after.
PROMPTS = {**{search: prompt for search, prompt, _ in FORMATS.values()}, "stream": stream_prompt}
