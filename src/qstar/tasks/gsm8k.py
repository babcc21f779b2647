"""``gsm8k``: grade-school math word problems (Cobbe et al. 2021, arXiv 2110.14168).

The benchmark of the Q* rumours, of Math-Shepherd (Wang et al. 2023) and of "Let's Verify Step
by Step" (Lightman et al. 2023). Data: ``qstar/data/gsm8k`` (MIT, with its notice), vendored
unchanged from github.com/openai/grade-school-math.

Splits. ``test`` is GSM8K's test set (1,319 problems). GSM8K has no validation set: ``val`` is
the last :data:`NUM_VAL` problems of GSM8K's train file and ``train`` the rest, so ``train`` and
``val`` are disjoint. Few-shot examples are the first ``num_shots`` problems of ``train``.

Steps. A step is one line of reasoning, free text (``legal_steps`` is ``None``: open-ended),
as in GSM8K's reference solutions: ``Natalia sold 48/2 = <<48/2=24>>24 clips in May.``. The
reasoning ends with a line that states the final answer, ``#### 72`` (GSM8K's format) or
``The answer is 72.`` (chain-of-thought prompting's). A model that writes ``Question:`` has
begun a new problem; such a line does not parse.

Answer extraction (:func:`extract_answer`): the number after ``####``, else the number after
"the answer is", else the last number in the text; ``$``, thousands separators and a trailing
period are dropped. Answers are compared as exact rationals (:func:`same_number`), so ``18``,
``18.00`` and ``$18`` agree.

Calculator annotations. GSM8K's solutions mark each computation as ``<<a*b=c>>``. A user can
check those at test time without knowing the answer: :func:`check_calculations` recomputes
every annotation. With ``check_calculations=True`` (the default) a step with a wrong
annotation is illegal, so searches drop it like any other illegal line; steps without
annotations are always legal.

Verifier. A user at test time does not know the answer, so ``has_test_time_verifier`` is False:
:meth:`GSM8KTask.outcome` and :meth:`GSM8KTask.verify` compare with GSM8K's answer key for labels
and metrics only; searches and scorers must not call them.
"""

from __future__ import annotations

import ast
import functools
import json
import re
from collections.abc import Hashable
from fractions import Fraction
from importlib import resources
from typing import Any

from qstar.errors import ConfigError, IllegalStepError, ParseError, ProblemError
from qstar.tasks.base import SPLITS, TaskBase
from qstar.types import Problem, State, Step, Verdict

__all__ = [
    "GSM8KTask",
    "extract_answer",
    "parse_number",
    "same_number",
    "check_calculations",
    "reference_steps",
    "NUM_VAL",
    "DEFAULT_NUM_SHOTS",
]

#: Problems at the end of GSM8K's train file held out as ``val``.
NUM_VAL = 473
DEFAULT_NUM_SHOTS = 4
MAX_STEP_CHARS = 400

_NUMBER = r"-?\$?\s?\d[\d,]*(?:\.\d+)?(?:/\d+)?"
_NUMBER_RE = re.compile(_NUMBER)
_FINAL_HASH = re.compile(r"####\s*(.*)")
_FINAL_PHRASE = re.compile(r"the (?:final )?answer is\s*:?\s*(.*)", re.IGNORECASE)
_ANNOTATION = re.compile(r"<<([^<>=]*)=([^<>]*)>>")


# -- numbers and answers -----------------------------------------------------------------------
def parse_number(text: str) -> Fraction | None:
    """The number ``text`` spells (``"$1,200.50"``, ``"-3"``, ``"3/4"``, ``"72."``), or None."""
    cleaned = text.strip().replace("$", "").replace(",", "").replace(" ", "").rstrip(".")
    if not cleaned:
        return None
    try:
        return Fraction(cleaned)
    except (ValueError, ZeroDivisionError):
        return None


def _first_number(text: str) -> str | None:
    m = _NUMBER_RE.search(text)
    return m.group() if m else None


def _canonical(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    as_float = float(value)
    if Fraction(repr(as_float)) == value:  # a terminating decimal
        return repr(as_float)
    return f"{value.numerator}/{value.denominator}"


def extract_answer(text: str) -> str | None:
    """The final numeric answer in ``text`` in canonical form (``"72"``, ``"0.5"``), or None.

    Order: the number after ``####``; else after "the answer is"; else the last number.
    """
    for pattern in (_FINAL_HASH, _FINAL_PHRASE):
        matches = list(pattern.finditer(text))
        if matches:
            found = _first_number(matches[-1].group(1))
            value = None if found is None else parse_number(found)
            if value is not None:
                return _canonical(value)
    numbers = [v for v in (parse_number(n) for n in _NUMBER_RE.findall(text)) if v is not None]
    return _canonical(numbers[-1]) if numbers else None


def same_number(a: str, b: str) -> bool:
    """True when two numeric strings denote the same rational number."""
    x, y = parse_number(a), parse_number(b)
    return x is not None and y is not None and x == y


def _states_final_answer(line: str) -> bool:
    return bool(_FINAL_HASH.search(line) or _FINAL_PHRASE.search(line))


# -- calculator annotations --------------------------------------------------------------------
_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b}


def _eval_arith(node: ast.AST) -> Fraction:
    """Exact value of a parsed ``+ - * /`` expression over decimal numbers; ValueError otherwise."""
    if isinstance(node, ast.Expression):
        return _eval_arith(node.body)
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, (int, float))
        and not isinstance(node.value, bool)
    ):
        return Fraction(repr(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _eval_arith(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        left, right = _eval_arith(node.left), _eval_arith(node.right)
        if isinstance(node.op, ast.Div):
            if right == 0:
                raise ValueError("division by zero")
            return left / right
        if type(node.op) in _OPS:
            return _OPS[type(node.op)](left, right)
    raise ValueError("not a + - * / expression over numbers")


def _decimals(text: str) -> int:
    return len(text.split(".", 1)[1]) if "." in text else 0


def check_calculations(text: str) -> Verdict:
    """Recompute every ``<<expression=result>>`` annotation in ``text``.

    A result may be rounded to the decimals it shows (GSM8K writes ``<<10/3=3.33>>``): it is
    accepted when it is within one unit of its last written digit of the exact value. An
    annotation that is not plain ``+ - * /`` arithmetic over numbers is not judged.
    """
    for expression, result in _ANNOTATION.findall(text):
        written = result.strip().replace(",", "").replace("$", "")
        stated = parse_number(written)
        if stated is None:
            continue
        try:
            exact = _eval_arith(ast.parse(expression.replace(",", "").replace("$", "").strip(), mode="eval"))
        except (SyntaxError, ValueError, RecursionError):
            continue
        if abs(exact - stated) >= Fraction(1, 10 ** _decimals(written)):
            return Verdict(False, f"<<{expression}={result}>>: {expression.strip()} is {_canonical(exact)}")
    return Verdict(True)


# -- data --------------------------------------------------------------------------------------
def _read_split_file(name: str) -> list[dict[str, str]]:
    text = resources.files("qstar.data").joinpath(f"gsm8k/{name}.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _solution_lines(solution: str) -> list[str]:
    return [line.strip() for line in solution.strip().splitlines() if line.strip()]


@functools.cache
def _split_problems(split: str) -> tuple[Problem, ...]:
    if split == "test":
        rows, start = _read_split_file("test"), 0
    else:
        rows = _read_split_file("train")
        start = 0 if split == "train" else len(rows) - NUM_VAL
        rows = rows[: len(rows) - NUM_VAL] if split == "train" else rows[start:]
    return tuple(_make_problem(row["question"], row["answer"], f"{split}/{i}") for i, row in enumerate(rows))


def _make_problem(question: str, answer: str | None, id: str = "") -> Problem:
    question = " ".join(question.split())
    if not question:
        raise ProblemError("gsm8k problem: the question is empty")
    data: dict[str, Any] = {"question": question}
    if answer is not None:
        final = extract_answer(answer)
        if final is None:
            raise ProblemError(f"gsm8k problem: no number in the answer {answer[:60]!r}")
        data["answer"] = final
        if "\n" in answer.strip() or "####" in answer:
            data["solution"] = _solution_lines(answer)
    return Problem("gsm8k", question, data, id)


def reference_steps(problem: Problem) -> list[str]:
    """GSM8K's reference solution as step lines (ending ``#### answer``); [] when unknown."""
    return list(problem.data.get("solution", ()))


# -- the task ----------------------------------------------------------------------------------
class GSM8KTask(TaskBase):
    """Math word problems, one line of reasoning per step (see the module docstring).

    ``num_shots``: worked train examples at the head of every prompt (0 = none).
    ``check_calculations``: steps with a wrong ``<<a*b=c>>`` annotation are illegal.
    """

    name = "gsm8k"
    has_test_time_verifier = False
    max_steps = 10

    def __init__(self, *, num_shots: int = DEFAULT_NUM_SHOTS, check_calculations: bool = True) -> None:
        if isinstance(num_shots, bool) or not isinstance(num_shots, int) or num_shots < 0:
            raise ConfigError(f"gsm8k: num_shots must be an integer >= 0, got {num_shots!r}")
        self.num_shots = num_shots
        self.check_calculations = check_calculations

    # -- problems --------------------------------------------------------------------------
    def problems(self, split: str) -> list[Problem]:
        if split not in SPLITS:
            raise ConfigError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        return list(_split_problems(split))

    def parse_problem(self, text: str) -> Problem:
        return _make_problem(text, None)

    def problem_from_json(self, obj: dict[str, Any], *, id: str = "") -> Problem:
        if obj.get("task", "gsm8k") != "gsm8k":
            raise ProblemError(f"problem is for task {obj['task']!r}, not 'gsm8k'")
        question, answer = obj.get("question"), obj.get("answer")
        if not isinstance(question, str):
            raise ProblemError('expected {"question": "<text>", "answer": "<number or solution>"}')
        if answer is not None and not isinstance(answer, (str, int, float)):
            raise ProblemError(f"gsm8k problem: answer must be a number or text, got {answer!r}")
        return _make_problem(question, None if answer is None else str(answer), id)

    # -- prompts ---------------------------------------------------------------------------
    @functools.cached_property
    def few_shot_prefix(self) -> str:
        """Worked examples from ``train`` in GSM8K's own format, each followed by a blank line."""
        blocks = []
        for problem in _split_problems("train")[: self.num_shots]:
            lines = "".join(line + "\n" for line in reference_steps(problem))
            blocks.append(f"Question: {problem.text}\nAnswer:\n{lines}\n")
        return "".join(blocks)

    def render(self, state: State) -> str:
        steps = "".join(s.text + "\n" for s in state.steps)
        return f"{self.few_shot_prefix}Question: {state.problem.text}\nAnswer:\n{steps}"

    # -- rules -----------------------------------------------------------------------------
    def initial_state(self, problem: Problem) -> State:
        return State(problem, (), ())

    def state_key(self, state: State) -> Hashable:
        return state.content

    def is_terminal(self, state: State) -> bool:
        return bool(state.steps) and _states_final_answer(state.steps[-1].text)

    def parse_step(self, state: State, text: str) -> Step:
        line = " ".join(text.split())
        if not line:
            raise ParseError("step '': empty line")
        if "\n" in text.strip():
            raise ParseError(f"step {line[:60]!r}: a step is one line")
        if line.lower().startswith("question:"):
            raise ParseError(f"step {line[:60]!r}: the model began a new question instead of a step")
        if len(line) > MAX_STEP_CHARS:
            raise ParseError(f"step {line[:60]!r}...: longer than {MAX_STEP_CHARS} characters")
        return Step(line)

    def apply(self, state: State, step: Step) -> State:
        if self.is_terminal(state):
            raise IllegalStepError("the reasoning already stated its final answer; no step can follow")
        parsed = self.parse_step(state, step.text)
        if self.check_calculations:
            verdict = check_calculations(parsed.text)
            if not verdict:
                raise IllegalStepError(f"wrong calculator annotation {verdict.reason}")
        return State(state.problem, (*state.steps, parsed), (*state.content, parsed.text))

    # -- answers (ground truth for labels and metrics only) ------------------------------------
    def answer(self, state: State) -> str | None:
        return extract_answer(state.steps[-1].text) if self.is_terminal(state) else None

    def outcome(self, state: State) -> float | None:
        """1.0/0.0 at a terminal state against the answer key, None before or without a key."""
        reference = state.problem.data.get("answer")
        if not self.is_terminal(state) or reference is None:
            return None
        found = self.answer(state)
        return 1.0 if found is not None and same_number(found, reference) else 0.0

    def verify(self, problem: Problem, answer: str) -> Verdict:
        reference = problem.data.get("answer")
        if reference is None:
            return Verdict(False, "this problem has no answer key")
        found = extract_answer(answer)
        if found is None:
            return Verdict(False, f"no number in the answer {answer.strip()[:60]!r}")
        if not same_number(found, reference):
            return Verdict(False, f"answer {found} is not {reference}")
        return Verdict(True)
