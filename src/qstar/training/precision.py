"""Training precision: plain fp32, or bf16 mixed precision.

``"bf16"`` runs the forward and backward passes' matrix products in bfloat16 under
``torch.autocast`` while the weights, their gradients and the optimizer's moments stay in fp32
(mixed precision training, Micikevicius et al. 2018, arXiv 1710.03740; bfloat16 needs no loss
scaling, Kalamkar et al. 2019, arXiv 1905.12322). On a CPU with AMX or AVX512-BF16 units the
tiny GPT's training steps take about a fifth less time; on other CPUs bf16 still works but may
be slower. The tiny GPT keeps its attention in fp32 on the CPU
(:class:`~qstar.policy.tinygpt.model.CausalSelfAttention`: PyTorch's CPU flash attention is
1.1 to 4 times slower in bf16 at its shapes), and losses are computed in fp32 (autocast's own rule).

Only training steps change: searches, scoring and evaluation always run in fp32, and ``"fp32"``
(the default everywhere) reproduces earlier runs bit for bit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from qstar.search.checks import check_choice

__all__ = ["PRECISIONS", "check_precision", "autocast"]

PRECISIONS = ("fp32", "bf16")


def check_precision(owner: str, value: object) -> None:
    """One clear :class:`~qstar.errors.ConfigError` unless ``value`` is one of :data:`PRECISIONS`."""
    check_choice(owner, "precision", value, PRECISIONS)


@contextlib.contextmanager
def autocast(precision: str, device: str | torch.device = "cpu") -> Iterator[None]:
    """The context a training step's forward pass (and loss) runs in: bf16 autocast on
    ``device``'s type for ``"bf16"``, nothing for ``"fp32"``. Call ``backward`` outside it (as
    PyTorch recommends); the backward pass follows the forward's dtypes."""
    check_precision("autocast", precision)
    if precision == "fp32":
        yield
        return
    with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
        yield
