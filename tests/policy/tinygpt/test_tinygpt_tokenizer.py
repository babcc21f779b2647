"""Specification of the arithmetic tokenizer."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qstar.errors import ConfigError, ParseError
from qstar.policy.tinygpt.tokenizer import Tokenizer

ALPHABET = st.sampled_from([chr(c) for c in range(32, 127)] + ["\n"])


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer()


def names(tok: Tokenizer, text: str) -> list[str]:
    return [tok.token(i) for i in tok.encode(text)]


def test_special_token_ids_are_fixed(tok):
    assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id) == (0, 1, 2, 3)
    assert [tok.token(i) for i in range(4)] == ["<pad>", "<bos>", "<eos>", "<unk>"]


def test_vocab_is_specials_integers_and_non_digit_characters(tok):
    # 4 specials + 1001 integers (0..1000) + 85 printable non-digits + newline
    assert tok.vocab_size == 4 + 1001 + (95 - 10) + 1


def test_integers_up_to_1000_are_single_tokens(tok):
    assert names(tok, "13 - 9 = 4\n") == ["13", " ", "-", " ", "9", " ", "=", " ", "4", "\n"]
    assert names(tok, "1000") == ["1000"]
    assert names(tok, "0") == ["0"]


def test_large_numbers_and_leading_zeros_split_into_digits(tok):
    assert names(tok, "1001") == ["1", "0", "0", "1"]
    assert names(tok, "007") == ["0", "0", "7"]
    assert names(tok, "x10000y") == ["x", "1", "0", "0", "0", "0", "y"]


def test_unknown_characters_become_unk(tok):
    assert tok.encode("a\tb") == [tok.encode("a")[0], tok.unk_id, tok.encode("b")[0]]
    assert tok.encode("é") == [tok.unk_id]
    assert tok.encode("٣") == [tok.unk_id]  # a non-ASCII digit is not a number token


def test_strict_encoding_raises_parse_error_with_offset(tok):
    with pytest.raises(ParseError, match="offset 2"):
        tok.encode("ab\tc", strict=True)


def test_decode_renders_specials(tok):
    ids = [tok.bos_id, *tok.encode("7"), tok.unk_id, tok.eos_id, tok.pad_id]
    assert tok.decode(ids) == "7\ufffd"
    assert tok.decode(ids, skip_special=False) == "<bos>7<unk><eos><pad>"


def test_decode_rejects_out_of_range_ids(tok):
    with pytest.raises(ParseError):
        tok.decode([tok.vocab_size])


@given(st.lists(ALPHABET, max_size=60).map("".join))
def test_decode_inverts_encode_on_the_alphabet(text):
    tok = Tokenizer()
    assert tok.decode(tok.encode(text, strict=True)) == text


@given(st.lists(st.sampled_from(list("0123456789 ")), max_size=30).map("".join))
def test_digit_runs_round_trip_with_small_max_int(text):
    tok = Tokenizer(max_int=20)
    assert tok.decode(tok.encode(text)) == text


def test_prompt_and_continuation_tokenize_separately_at_a_newline(tok):
    prompt, continuation = "4 9 10 13\n", "13 - 9 = 4 (left: 4 4 10)"
    assert tok.encode(prompt) + tok.encode(continuation) == tok.encode(prompt + continuation)


def test_config_round_trip(tok):
    cfg = tok.config()
    assert cfg == {"type": "qstar-arith", "version": 1, "max_int": 1000, "vocab_size": 1091}
    assert Tokenizer.from_config(cfg) == tok
    assert Tokenizer.from_config(Tokenizer(max_int=50).config()).vocab_size == 4 + 51 + 86


def test_config_of_another_version_is_rejected():
    with pytest.raises(ConfigError):
        Tokenizer.from_config({"type": "qstar-arith", "version": 99, "max_int": 1000})
    with pytest.raises(ConfigError):
        Tokenizer.from_config({"type": "qstar-arith", "version": 1, "max_int": 1000, "vocab_size": 7})


def test_max_int_is_validated():
    with pytest.raises(ConfigError):
        Tokenizer(max_int=3)


def test_remembered_short_texts_give_fresh_lists_and_strict_still_checks():
    tok = Tokenizer()
    first = tok.encode("4 + 9 = 13")
    first.append(0)  # the caller's list is its own
    assert names(tok, "4 + 9 = 13") == ["4", " ", "+", " ", "9", " ", "=", " ", "13"]
    tok.encode("a\tb")  # remembered with its <unk>
    with pytest.raises(ParseError, match="offset 1"):
        tok.encode("a\tb", strict=True)
    long_text = "1 + 1 = 2\n" * 20  # longer than what is remembered: encoded each time
    assert tok.encode(long_text) == tok.encode(long_text) and long_text not in tok._short


@given(st.lists(st.text(ALPHABET, max_size=12), max_size=6))
def test_encoding_twice_gives_the_same_ids(texts):
    tok = Tokenizer()
    first = [tok.encode(t) for t in texts]
    assert [tok.encode(t) for t in texts] == first == [Tokenizer().encode(t) for t in texts]
