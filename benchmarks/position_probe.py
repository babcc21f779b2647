"""Does a model's step-writing survive being moved to another place in the text?

    python -m benchmarks.position_probe --model default --model runs/NAME [--shift 0 --shift 6 ...]
        [--task game24] [--splits train,val] [--limit 100] [--out PATH]

For each model and each shift ``k``: greedy generation of the first line at the initial state
of the first ``--limit`` problems of each split, with exactly the same tokens but every position
id moved up by ``k`` (as if ``k`` tokens came before the prompt), parsed and applied by the task.
A written search (Stream of Search, scan) writes its lines at positions a one-step prompt never
reaches; a model whose line-writing is tied to absolute positions has to learn it again at each
place. Rotary positions (``--position rope``) are shift-invariant by construction. Writes
benchmarks/results/position_probe.json.
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.common import write_json
from qstar.errors import QstarError
from qstar.policy.tinygpt.checkpoint import load_checkpoint
from qstar.policy.tinygpt.model import GPT
from qstar.policy.tinygpt.policy import default_checkpoint_dir
from qstar.policy.tinygpt.tokenizer import Tokenizer
from qstar.tasks.registry import get_task


@torch.no_grad()
def shifted_line(model: GPT, tokenizer: Tokenizer, prompt: str, shift: int, max_new_tokens: int = 40) -> str:
    """The greedy first line after ``prompt`` with every position id moved up by ``shift``."""
    ids = [tokenizer.bos_id, *tokenizer.encode(prompt)]
    out: list[int] = []
    for _ in range(max_new_tokens):
        if shift + len(ids) + len(out) > model.config.block_size:
            break
        idx = torch.tensor([ids + out])
        positions = torch.arange(shift, shift + idx.size(1))[None]
        token = int(model(idx, position_ids=positions, last_only=True).logits[0, -1].argmax())
        if token == tokenizer.eos_id or tokenizer.decode([token]) == "\n":
            break
        out.append(token)
    return tokenizer.decode(out)


def probe(model_dir: str, task_name: str, splits: list[str], shifts: list[int], limit: int) -> dict:
    """Legal first lines per split and shift, for one checkpoint."""
    task = get_task(task_name)
    ckpt = load_checkpoint(default_checkpoint_dir() if model_dir == "default" else model_dir)
    out: dict = {"position": ckpt.model.config.position, "block_size": ckpt.model.config.block_size}
    for split in splits:
        states = [task.initial_state(p) for p in task.problems(split)[:limit]]
        out[split] = {}
        for shift in shifts:
            legal = 0
            for state in states:
                line = shifted_line(ckpt.model, ckpt.tokenizer, task.render(state), shift)
                try:
                    task.apply(state, task.parse_step(state, line))
                    legal += 1
                except QstarError:
                    pass
            out[split][str(shift)] = {"n": len(states), "legal_first_lines": legal}
            print(
                f"{model_dir} {split} shift {shift:>3}: {legal}/{len(states)} legal first lines", flush=True
            )
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", default=None, help="'default' or a checkpoint directory")
    ap.add_argument(
        "--shift", action="append", type=int, default=None, help="position shifts (default 0 6 30)"
    )
    ap.add_argument("--task", default="game24")
    ap.add_argument("--splits", default="train,val")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    shifts = args.shift or [0, 6, 30]
    models = args.model or ["default"]
    results = {m: probe(m, args.task, args.splits.split(","), shifts, args.limit) for m in models}
    payload = {"task": args.task, "limit": args.limit, "shifts": shifts, "results": results}
    write_json("position_probe", payload, args.out)
    return payload


if __name__ == "__main__":
    main()
