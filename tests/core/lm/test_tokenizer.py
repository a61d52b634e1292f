"""core.lm.tokenizer: one fixed character vocabulary for every task."""

import numpy as np
import pytest

from core.lm.tokenizer import DEFAULT_CHARS, TOKENIZER, CharTokenizer


def test_specials_and_size():
    tok = CharTokenizer()
    assert (tok.pad_id, tok.bos_id, tok.eos_id) == (0, 1, 2)
    assert tok.vocab_size == 3 + len(DEFAULT_CHARS) == len(tok)
    for c in " az09.,!'+=-:?":
        assert c in DEFAULT_CHARS


def test_vocabulary_order_is_frozen():
    # The id of a character is part of every stored checkpoint: this must never change.
    assert TOKENIZER.encode(" az09.?") == [3, 4, 29, 30, 39, 40, 48]


def test_round_trip():
    text = "the film was truly superb, 17+25=42! isn't it: -3?"
    ids = TOKENIZER.encode(text)
    assert all(3 <= i < TOKENIZER.vocab_size for i in ids)
    assert TOKENIZER.decode(ids) == text
    assert TOKENIZER.encode("") == []


def test_decode_stops_at_eos_and_drops_pad_bos():
    t = TOKENIZER
    ids = [t.bos_id, *t.encode("ok."), t.eos_id, *t.encode("junk"), t.pad_id]
    assert t.decode(ids) == "ok."
    assert t.decode([t.pad_id, *t.encode("a"), t.pad_id, *t.encode("b")]) == "ab"
    assert t.decode(np.array([t.bos_id, *t.encode("42"), t.eos_id])) == "42"


def test_unknown_character_names_it_and_the_allowed_set():
    with pytest.raises(ValueError, match=r"'A'.*allowed characters"):
        TOKENIZER.encode("A film")
    with pytest.raises(ValueError, match="'\\\\n'"):
        TOKENIZER.encode("a\nb")
    assert not TOKENIZER.is_encodable("Ä")


def test_decode_rejects_out_of_range_ids():
    with pytest.raises(ValueError, match="outside"):
        TOKENIZER.decode([TOKENIZER.vocab_size])
