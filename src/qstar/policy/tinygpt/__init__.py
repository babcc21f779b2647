"""The built-in tiny GPT: tokenizer, model (KV cache + value head), checkpoints, policy.

See :mod:`qstar.policy.tinygpt.model` for the network and
:mod:`qstar.policy.tinygpt.policy` for how it is batched behind the Policy protocol.
"""

from qstar.policy.tinygpt.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from qstar.policy.tinygpt.model import GPT, GPTConfig, GPTOutput
from qstar.policy.tinygpt.policy import (
    SHIPPED_CHECKPOINTS,
    TinyGPTPolicy,
    default_checkpoint_dir,
    load_default_policy,
    shipped_checkpoint_dir,
)
from qstar.policy.tinygpt.tokenizer import Tokenizer

__all__ = [
    "GPT",
    "Checkpoint",
    "SHIPPED_CHECKPOINTS",
    "GPTConfig",
    "GPTOutput",
    "TinyGPTPolicy",
    "Tokenizer",
    "default_checkpoint_dir",
    "load_checkpoint",
    "load_default_policy",
    "save_checkpoint",
    "shipped_checkpoint_dir",
]
