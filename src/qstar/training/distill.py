"""System 2 -> System 1 in context: teach the model to write its own search (Stream of Search).

Gandhi et al. 2024, "Stream of Search (SoS): Learning to Search in Language" (arXiv
2404.03683). The model's own search, :func:`~qstar.search.stream.stream_teacher` (depth-first,
children ordered by the policy's prior with Gumbel noise, dead ends judged by its value head,
answers checked by the task's verifier), runs on the train split and writes traces; the model
is fine-tuned to write the verified ones after ``search:``. Afterwards one greedy decode
(:func:`~qstar.search.stream.stream`) explores, drops dead ends and backtracks by itself.

No oracle: traces come from the rules, the verifier and the model being distilled; only
verified (solved) traces are trained on, as in rejection-sampling fine-tuning. Test and val
problems are refused (:func:`~qstar.training.loop_data.check_not_held_out`).

Two more kinds of examples keep the model's other uses alive (both on by default): the
one-step format on every state of a solved trace's answer path (System 1 without search, and
the priors search reads), and the value head regressed on the values its teacher gave, with
the verifier's outcome on terminal states (Q* and MCTS read it).

An optional third kind, the written judgement (``judge_weight > 0``, :func:`judge_examples`),
teaches the decision a trace makes after each step line directly: on every state the teacher
valued, the student's probability of writing ``back`` next is trained towards ``1 - value``
(the teacher's value head, or the verifier's outcome on a final state). A trace shows only a
few such decisions; the teacher values a few dozen states per problem.

With ``teacher="self"`` the model being distilled is its own teacher (STaR, Zelikman et al.
2022, "STaR: Bootstrapping Reasoning With Reasoning", on written searches): it writes one
stream per problem itself, one legal line at a time sampled at the teacher temperature
(:class:`~qstar.search.stream.StreamConfig`), and the verified ones are kept; ``mixed``
records of earlier runs are trained on alongside, as STaR keeps every pass's rationales. Its
own value examples are only the verifier's outcomes on the final states it wrote (a stream
values nothing else), so mixing in a search teacher's records keeps the value head anchored.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from qstar.errors import ConfigError
from qstar.policy.tinygpt.checkpoint import load_checkpoint, save_checkpoint
from qstar.policy.tinygpt.model import with_block_size, with_extra_layers
from qstar.rewards.base import Scorer
from qstar.rewards.lookahead import LookaheadScorer
from qstar.rewards.value_head import ValueHeadScorer
from qstar.search.checks import check_int
from qstar.search.registry import run_search
from qstar.search.stream import STREAM_HEADER
from qstar.tasks.base import Task
from qstar.tasks.registry import get_task
from qstar.training.distill_config import FORMATS, PROMPTS, STREAM_KNOBS, STUDENT_MODES, DistillConfig
from qstar.training.loop_data import check_not_held_out, derive_seed, held_out_texts
from qstar.training.runs import write_atomic
from qstar.training.sft import LMExample, SFTConfig, TokenExample, ValueExample, train_sft
from qstar.training.workers import Job, Workers, load_policy, records_cost, unpack_job
from qstar.types import Budget, Cost, Problem

__all__ = [
    "TRACES_FILE",
    "DistillConfig",
    "trace_job",
    "teacher_job",
    "collect_traces",
    "trace_examples",
    "judge_examples",
    "load_records",
    "save_records",
    "unsolved_problems",
    "records_cost",
    "distill",
    "evaluate_student",
]


def trace_job(job: Job) -> list[dict[str, Any]]:
    """Teacher traces of each problem of ``job`` (``job.samples`` runs each, ``job.knobs`` =
    the teacher's config): the traces with their verdicts, the one-step examples of the solved
    answer paths and the values the teacher gave (pure: same job, same records)."""
    start = time.process_time()
    task, problems, seeds = unpack_job(job)
    policy = load_policy(job.checkpoint)
    scorer: Scorer = ValueHeadScorer(task, policy)
    if job.scorer == "lookahead":
        scorer = LookaheadScorer(task, scorer)
    out = []
    for problem, seed in zip(problems, seeds, strict=True):
        cost, traces, plain, values = Cost(), [], {}, {}
        for k in range(job.samples):
            budget = Budget(max_expansions=job.budget)
            result = run_search(
                job.search, problem, task, policy, scorer, budget, derive_seed(seed, k), **job.knobs
            )
            cost.add(result.cost)
            traces.append(
                {"trace": result.info["trace"], "solved": bool(result.solved), "lines": result.info["lines"]}
            )
            tree = result.tree
            assert tree is not None
            for node in range(1, len(tree)):
                if tree.terminal[node] and tree.outcome[node] is not None:
                    values[task.render(tree.state[node])] = float(tree.outcome[node])
                elif tree.value[node] is not None:
                    values[task.render(tree.state[node])] = float(tree.value[node])
            if result.solved:
                state = task.initial_state(problem)
                for step in result.steps:
                    plain[task.render(state)] = step.text
                    state = task.apply(state, step)
        out.append(
            {
                "id": problem.id,
                "text": problem.text,
                "prompt": PROMPTS[job.search](task, problem),
                "traces": traces,
                "plain": sorted(plain.items()),
                "values": sorted(values.items()),
                "cost": cost.to_json(),
            }
        )
    if out:
        out[-1]["cpu_seconds"] = time.process_time() - start
    return out


def teacher_job(
    task: Task, problems: Sequence[Problem], checkpoint: str | Path, config: DistillConfig
) -> Job:
    """The :func:`trace_job` of ``config``'s teacher from ``checkpoint`` on ``problems``, each
    with its own seed (derived from ``config.seed`` and the problem's text, so a problem gets
    the same teacher runs in whatever job it falls). No held-out check: callers that train
    on the records make it (:func:`collect_traces`)."""
    seeds = [derive_seed(config.seed, "distill", p.text) for p in problems]
    return Job(
        task.name,
        Job.pack(problems, seeds),
        str(checkpoint),
        search=config.teacher_search,
        budget=config.teacher_budget,
        knobs=asdict(config.teacher_config()),
        samples=config.samples,
        scorer=config.teacher_judge,
    )


def collect_traces(
    task: Task,
    problems: Sequence[Problem],
    checkpoint: str | Path,
    config: DistillConfig,
    *,
    on_progress: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Run :func:`trace_job` over ``problems`` (never test or val) with ``config.workers``
    processes; ``on_progress(n)`` after each batch of ``n`` problems."""
    check_not_held_out(problems, held_out_texts(task))
    workers = Workers(config.workers)
    records: list[dict[str, Any]] = []
    try:
        per_job = 8
        wave = per_job * max(1, config.workers) * 2
        for start in range(0, len(problems), wave):
            chunk = list(problems[start : start + wave])
            jobs = [
                teacher_job(task, chunk[i : i + per_job], checkpoint, config)
                for i in range(0, len(chunk), per_job)
            ]
            records += workers.map(trace_job, jobs)
            if on_progress is not None:
                on_progress(len(chunk))
    finally:
        workers.close()
    return records


def trace_examples(
    records: Sequence[dict[str, Any]], config: DistillConfig
) -> tuple[list[LMExample], list[ValueExample], dict[str, int]]:
    """Training examples from :func:`trace_job` records: every distinct solved trace (ended
    by ``<eos>``), plus the one-step examples and value targets when the config keeps them."""
    lm: list[LMExample] = []
    values: list[ValueExample] = []
    sizes = {"problems": len(records), "problems_solved": 0, "traces": 0, "traces_solved": 0}
    for record in records:
        solved = sorted({t["trace"] for t in record["traces"] if t["solved"]})
        sizes["traces"] += len(record["traces"])
        sizes["traces_solved"] += sum(t["solved"] for t in record["traces"])
        sizes["problems_solved"] += bool(solved)
        lm += [LMExample(record["prompt"], trace + "\n", eos=True) for trace in solved]
        if config.keep_plain:
            lm += [LMExample(prompt, step + "\n", eos=False) for prompt, step in record["plain"]]
        if config.keep_values:
            values += [ValueExample(prompt, min(1.0, max(0.0, v))) for prompt, v in record["values"]]
    sizes["lm_examples"], sizes["value_examples"] = len(lm), len(values)
    return lm, values, sizes


def judge_examples(records: Sequence[dict[str, Any]]) -> list[TokenExample]:
    """The written-judgement examples of stream records (module docstring): for every state
    the teacher valued, the trace so far written straight to it (``search:`` and the step
    lines of its path), and ``1 - value`` as the target probability of writing ``back`` next.
    A value prompt is the task's one-step prompt of the state: the problem's header, then the
    path's step lines; one that does not start with the header is refused."""
    out: list[TokenExample] = []
    for record in records:
        header = record["prompt"][: -len(STREAM_HEADER)]
        for prompt, value in record["values"]:
            if not prompt.startswith(header):
                raise ConfigError(f"value prompt {prompt[:40]!r} does not start with its problem {header!r}")
            context = record["prompt"] + prompt[len(header) :]
            out.append(TokenExample(context, "back to:", 1.0 - min(1.0, max(0.0, float(value)))))
    return out


#: The teacher's records (:func:`trace_job`), saved in the student's directory before training.
TRACES_FILE = "teacher_traces.jsonl.gz"


def save_records(path: Path, records: Sequence[dict[str, Any]]) -> None:
    """Write the records as gzipped JSON lines, atomically (:func:`~qstar.training.runs.write_atomic`)."""
    lines = "".join(json.dumps(record) + "\n" for record in records)
    write_atomic(path, gzip.compress(lines.encode("utf-8"), mtime=0))


def load_records(path: str | Path, task: Task) -> list[dict[str, Any]]:
    """Teacher records saved by an earlier :func:`distill` (a :data:`TRACES_FILE` or the
    directory that holds one); a record of a test or val problem is refused."""
    path = Path(path)
    path = path / TRACES_FILE if path.is_dir() else path
    if not path.is_file():
        raise ConfigError(
            f"no teacher traces at {path} (expected a {TRACES_FILE} written by qstar train distill)"
        )
    with gzip.open(path, "rt", encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    check_not_held_out([task.parse_problem(r["text"]) for r in records], held_out_texts(task))
    return records


def unsolved_problems(task: Task, records: Sequence[dict[str, Any]]) -> list[Problem]:
    """The train problems of ``records`` on which no teacher run was verified, in split order."""
    unsolved = {r["text"] for r in records if not any(t["solved"] for t in r["traces"])}
    return [p for p in task.problems("train") if p.text in unsolved]


def _examples(
    records: Sequence[dict[str, Any]], config: DistillConfig
) -> tuple[list[LMExample], list[ValueExample], list[TokenExample], dict[str, int]]:
    """:func:`trace_examples` and, when the config weighs them, :func:`judge_examples` of
    ``records``, with their sizes (``judge_examples`` among them)."""
    lm, values, sizes = trace_examples(records, config)
    judged = judge_examples(records) if config.judge_weight > 0 else []
    sizes["judge_examples"] = len(judged)
    return lm, values, judged, sizes


def _check_format(task: Task, records: Sequence[dict[str, Any]], config: DistillConfig) -> None:
    """Refuse saved records whose prompts are not those of ``config``'s trace format."""
    prompt_of = PROMPTS[config.teacher_search]
    odd = [r["text"] for r in records if r["prompt"] != prompt_of(task, task.parse_problem(r["text"]))]
    if odd:
        raise ConfigError(
            f"saved traces of {odd[:3]} were not written in the {config.format!r} format (--format)"
        )


def distill(
    init: str | Path,
    out: str | Path,
    config: DistillConfig,
    *,
    task_name: str = "game24",
    problems: Sequence[Problem] | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    meta: dict[str, Any] | None = None,
    records: Sequence[dict[str, Any]] | None = None,
    mixed: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Teacher traces from checkpoint ``init`` on ``problems`` (default: the task's train
    split; saved to ``out/``:data:`TRACES_FILE`), fine-tune a copy of it (context grown to
    ``config.block_size``) on them and save it to ``out``. Returns the checkpoint's ``meta``:
    config, data sizes, teacher cost, training metrics and CPU seconds. ``records`` (from
    :func:`load_records`) reuses an earlier teacher's traces instead of running the teacher;
    their teacher cost is still reported, as it was spent once. ``mixed`` (also from
    :func:`load_records`): an earlier run's records trained on alongside this teacher's (their
    solved traces, one-step and value examples; STaR keeps the rationales of every pass),
    counted apart in the sizes (``data["mixed"]``); their cost was an earlier run's."""
    task = get_task(task_name)
    problems = list(task.problems("train") if problems is None else problems)
    if not problems:
        raise ConfigError("distill needs at least one training problem")
    cpu0 = time.process_time()
    from rich.progress import Progress

    for saved in (records or (), mixed):
        _check_format(task, saved, config)
    if records is None:
        with Progress(disable=not progress, transient=True) as bar:
            job = bar.add_task("teacher traces", total=len(problems))
            records = collect_traces(task, problems, init, config, on_progress=lambda n: bar.advance(job, n))
    save_records(Path(out) / TRACES_FILE, records)
    lm, values, judged, sizes = _examples(records, config)
    if mixed:
        lm_mixed, values_mixed, judged_mixed, sizes["mixed"] = _examples(mixed, config)
        lm, values, judged = lm + lm_mixed, values + values_mixed, judged + judged_mixed
        log(f"mixed in {sizes['mixed']['traces_solved']} solved traces of {len(mixed)} earlier problems")
    teacher_cost = records_cost(records)
    worker_cpu = sum(r.get("cpu_seconds", 0.0) for r in records) if config.workers > 1 else 0.0
    log(
        f"teacher: {sizes['traces_solved']}/{sizes['traces']} traces solved on "
        f"{sizes['problems_solved']}/{sizes['problems']} problems; {sizes['lm_examples']} LM and "
        f"{sizes['value_examples']} value examples"
    )
    if sizes["traces_solved"] + sizes.get("mixed", {}).get("traces_solved", 0) == 0:
        raise ConfigError("the teacher solved no problem: nothing to distil (check the checkpoint and task)")
    ckpt = load_checkpoint(init)
    model = with_block_size(ckpt.model, max(config.block_size, ckpt.model.config.block_size))
    if config.grow_layers:
        model = with_extra_layers(model, config.grow_layers, seed=config.seed)
        log(f"student grown to {model.config.n_layer} layers")
    # <bos> prompt completion <eos> must fit: longer traces are dropped, and counted.
    fits = [
        len(ckpt.tokenizer.encode(e.prompt + e.completion)) + 2 <= model.config.block_size + 1 for e in lm
    ]
    sizes["lm_dropped_too_long"] = fits.count(False)
    lm = [e for e, ok in zip(lm, fits, strict=True) if ok]
    if sizes["lm_dropped_too_long"]:
        log(
            f"dropped {sizes['lm_dropped_too_long']} traces longer than the block size {model.config.block_size}"
        )
    sft = SFTConfig(
        steps=config.steps,
        batch_size=config.batch_size,
        lr=config.lr,
        append_eos=False,
        bucket_by_length=True,
        seed=config.seed,
        token_loss_weight=config.judge_weight,
        precision=config.precision,
    )
    metrics = train_sft(model, ckpt.tokenizer, lm, values, sft, progress=progress, token_examples=judged)
    card = {
        **(meta or {}),
        "trainer": "distill",
        "init": str(init),
        "task": task.name,
        "distill_config": asdict(config),
        "data": sizes,
        "teacher_cost": teacher_cost.to_json(),
        "train_metrics": metrics,
        "cpu_seconds": time.process_time() - cpu0 + worker_cpu,
    }
    save_checkpoint(out, model, ckpt.tokenizer, meta=card)
    return card


def evaluate_student(
    checkpoint: str | Path,
    problems: Sequence[Problem],
    *,
    task_name: str = "game24",
    modes: Sequence[str] | None = None,
    search_budget: int = 11,
    on_result: Callable[[str], None] | None = None,
    block_size: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Accuracy and cost per problem of each mode of :data:`STUDENT_MODES` on ``problems``
    (``qstar`` at ``search_budget`` expansions, value head as its heuristic); ``modes``: default
    those of the format the checkpoint was distilled with (:data:`FORMATS`; ``stream`` when it
    was not distilled); ``on_result(mode)`` after each problem. ``block_size`` reads the model
    with another context length (a longer written search); only a model with rotary positions
    can be read beyond the block it was trained with."""
    from qstar.evaluation import evaluate
    from qstar.policy.tinygpt.policy import TinyGPTPolicy

    task = get_task(task_name)
    policy = TinyGPTPolicy.load(checkpoint)
    if block_size is not None:
        trained, position = policy.model.config.block_size, policy.model.config.position
        check_int("evaluate_student", "block_size", block_size)
        if block_size > trained and position != "rope":
            raise ConfigError(
                f"{checkpoint} has {position} positions trained up to {trained}: it cannot be read with "
                f"block_size {block_size} (only rotary positions carry to new places); train it at that "
                "block instead (qstar train distill --block-size)"
            )
        policy.model = with_block_size(policy.model, block_size).eval()
    scorer = ValueHeadScorer(task, policy)
    if modes is None:
        taught = (getattr(policy, "meta", None) or {}).get("distill_config", {}).get("format", "stream")
        modes = FORMATS.get(taught, FORMATS["stream"])[2]
    out: dict[str, dict[str, Any]] = {}
    for mode in modes:
        if mode not in STUDENT_MODES:
            raise ConfigError(f"unknown mode {mode!r}; choose from {', '.join(STUDENT_MODES)}")
        cpu = time.process_time()
        budget = Budget(max_expansions=search_budget) if mode == "qstar" else Budget()
        report = evaluate(
            problems,
            task,
            policy,
            scorer if mode == "qstar" else None,
            search="stream" if mode in STREAM_KNOBS else mode,
            budget=budget,
            knobs=STREAM_KNOBS.get(mode),
            on_result=None if on_result is None else (lambda _r, m=mode: on_result(m)),
        )
        n = max(1, report.n)
        ends: dict[str, int] = {}
        for r in report.results:
            if "end" in r.info:
                ends[r.info["end"]] = ends.get(r.info["end"], 0) + 1
        out[mode] = {
            "accuracy": report.accuracy,
            "n": report.n,
            "tokens_per_problem": report.cost.tokens / n,
            "expansions_per_problem": report.cost.expansions / n,
            "cpu_seconds_per_problem": (time.process_time() - cpu) / n,
            **({"ends": ends} if ends else {}),
        }
    return out
