"""A small, fixed tokenizer for arithmetic reasoning text.

Numbers are what arithmetic reasoning is about, so every integer ``0..max_int`` (1000 by
default) written canonically is a single token: ``"13 - 9 = 4"`` is five tokens
(``13``, `` ``, ``-``, `` ``, ``9``, ...), not one per character. Everything else is one token
per character of printable ASCII (32..126, digits excluded since they are covered by the
integer tokens) plus ``"\\n"``.

Vocabulary (ids in this order):

* special tokens ``<pad>`` = 0, ``<bos>`` = 1, ``<eos>`` = 2, ``<unk>`` = 3;
* one token per integer ``0..max_int``;
* ``"\\n"`` and the printable ASCII characters except ``0-9``.

Encoding scans the text with the regular expression ``[0-9]+|.|\\n``. A digit run is one token
when its value is at most ``max_int`` and it has no leading zero (``"0"`` itself is fine);
otherwise each digit becomes its own (single-digit integer) token, so ``"007"`` is
``0 0 7`` and ``"2024"`` is ``2 0 2 4``. Unknown characters (tabs, non-ASCII) become
``<unk>``, or raise :class:`~qstar.errors.ParseError` with ``strict=True``.
``decode(encode(s)) == s`` for every text over the alphabet (printable ASCII and ``"\\n"``).

**Prompts and continuations are tokenized separately and concatenated.** Every qstar prompt
ends with ``"\\n"``, a token boundary in any tokenization, so ``encode(prompt) +
encode(continuation)`` is also how the concatenated text would be tokenized except for digit
runs that straddle the boundary, which cannot happen after a newline.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from qstar.errors import ConfigError, ParseError

__all__ = ["Tokenizer", "TOKENIZER_TYPE", "TOKENIZER_VERSION", "SPECIAL_TOKENS"]

TOKENIZER_TYPE = "qstar-arith"
TOKENIZER_VERSION = 1
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
_PIECE = re.compile(r"[0-9]+|.|\n", re.DOTALL)
# Decoding <unk> gives the Unicode replacement character, the standard stand-in for "a
# character that could not be represented".
_UNK_TEXT = "\ufffd"
# Texts up to this many characters are remembered (a search encodes the same step lines and
# states again and again), up to this many of them.
_SHORT_TEXT, _SHORT_CACHE = 64, 1 << 16


def _characters() -> list[str]:
    return ["\n"] + [chr(c) for c in range(32, 127) if not chr(c).isdigit()]


class Tokenizer:
    """Integer-aware character tokenizer (see module docstring).

    ``max_int`` is the largest integer that is a single token; the default 1000 covers the
    numbers of Game of 24, Countdown and small arithmetic. Tests use a smaller ``max_int`` for a
    smaller vocabulary.
    """

    pad_id = 0
    bos_id = 1
    eos_id = 2
    unk_id = 3

    def __init__(self, max_int: int = 1000) -> None:
        if isinstance(max_int, bool) or not isinstance(max_int, int) or max_int < 9:
            raise ConfigError(f"tokenizer max_int must be an integer >= 9, got {max_int!r}")
        self.max_int = max_int
        self._id_to_token: list[str] = list(SPECIAL_TOKENS)
        self._id_to_token += [str(n) for n in range(max_int + 1)]
        self._id_to_token += _characters()
        self._token_to_id = {tok: i for i, tok in enumerate(self._id_to_token)}
        # Special-token names must not shadow a character: "<" is a character token, "<pad>"
        # is only ever produced by id, never by encoding text.
        for i, tok in enumerate(SPECIAL_TOKENS):
            self._token_to_id[tok] = i
        self._num_offset = len(SPECIAL_TOKENS)
        self._decode_table = [""] * len(SPECIAL_TOKENS) + self._id_to_token[len(SPECIAL_TOKENS) :]
        self._decode_table[self.unk_id] = _UNK_TEXT
        # Short texts (step lines, states) are encoded again and again during a search.
        self._short: dict[str, tuple[int, ...]] = {}

    @property
    def vocab_size(self) -> int:
        return len(self._id_to_token)

    def token(self, token_id: int) -> str:
        """The name of a token id (``"<eos>"``, ``"13"``, ``"+"``)."""
        return self._id_to_token[token_id]

    def encode(self, text: str, *, strict: bool = False) -> list[int]:
        """Token ids of ``text`` (no ``<bos>``/``<eos>`` added)."""
        short = len(text) <= _SHORT_TEXT
        if short and not strict and text in self._short:
            return list(self._short[text])
        ids = self._encode(text, strict=strict)
        if short:
            if len(self._short) >= _SHORT_CACHE:
                self._short.clear()
            self._short[text] = tuple(ids)
        return ids

    def _encode(self, text: str, *, strict: bool) -> list[int]:
        ids: list[int] = []
        table = self._token_to_id
        for match in _PIECE.finditer(text):
            piece = match.group()
            if piece[0].isascii() and piece[0].isdigit():
                if (len(piece) == 1 or piece[0] != "0") and int(piece) <= self.max_int:
                    ids.append(self._num_offset + int(piece))
                else:
                    ids.extend(self._num_offset + int(d) for d in piece)
                continue
            token_id = table.get(piece) if len(piece) == 1 else None
            if token_id is None:
                if strict:
                    raise ParseError(
                        f"character {piece!r} at offset {match.start()} is not in the tokenizer's "
                        "alphabet (printable ASCII and newline)"
                    )
                token_id = self.unk_id
            ids.append(token_id)
        return ids

    def decode(self, ids: Iterable[int], *, skip_special: bool = True) -> str:
        """Text of ``ids``. With ``skip_special`` (default) ``<pad>``, ``<bos>`` and ``<eos>``
        decode to nothing and ``<unk>`` to U+FFFD; otherwise specials decode to their names."""
        table = self._decode_table if skip_special else self._id_to_token
        try:
            return "".join(table[i] for i in ids)
        except (IndexError, TypeError) as err:
            raise ParseError(f"token ids must be integers in [0, {self.vocab_size}): {err}") from err

    def decode_token(self, token_id: int) -> str:
        """Text of one token as :meth:`decode` renders it with ``skip_special=True``."""
        return self._decode_table[token_id]

    def config(self) -> dict[str, Any]:
        """JSON-compatible description saved with checkpoints; see :meth:`from_config`."""
        return {
            "type": TOKENIZER_TYPE,
            "version": TOKENIZER_VERSION,
            "max_int": self.max_int,
            "vocab_size": self.vocab_size,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Tokenizer:
        """Rebuild a tokenizer from :meth:`config`; raises ConfigError for another type/version."""
        if config.get("type") != TOKENIZER_TYPE or config.get("version") != TOKENIZER_VERSION:
            raise ConfigError(
                f"tokenizer config {dict(config)!r} is not {TOKENIZER_TYPE} version {TOKENIZER_VERSION}"
            )
        tok = cls(max_int=config.get("max_int", 1000))
        if "vocab_size" in config and config["vocab_size"] != tok.vocab_size:
            raise ConfigError(
                f"tokenizer config says vocab_size {config['vocab_size']}, but max_int "
                f"{tok.max_int} gives {tok.vocab_size}"
            )
        return tok

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and other.config() == self.config()

    def __hash__(self) -> int:
        return hash((TOKENIZER_TYPE, TOKENIZER_VERSION, self.max_int))

    def __repr__(self) -> str:
        return f"Tokenizer(max_int={self.max_int}, vocab_size={self.vocab_size})"
