from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crnn_cli.core.metrics import Accumulator, alignment, levenshtein, normalize_label


def test_levenshtein_known_values():
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3
    assert levenshtein("abc", "abc") == 0


@given(st.text(max_size=12), st.text(max_size=12))
def test_levenshtein_is_a_metric(a, b):
    d = levenshtein(a, b)
    assert d == levenshtein(b, a)
    assert abs(len(a) - len(b)) <= d <= max(len(a), len(b))
    assert (d == 0) == (a == b)
    # the alignment has as many edits as the distance
    assert len(alignment(a, b)) == d


def test_paddle_protocol_ignores_spaces():
    acc = Accumulator("paddle")
    assert acc.add("TOTAL 12.00", "TOTAL12.00") is True
    assert acc.add("abc", "abd") is False
    assert acc.accuracy == 0.5
    assert acc.norm_edit_distance == pytest.approx(1 - (0 + 1 / 3) / 2)


def test_benchmark_protocol_drop_and_strip():
    drop = Accumulator("benchmark", "drop")
    assert drop.add("HELLO", "hello") is True
    assert drop.add("x", "it's") is None  # dropped: punctuation
    assert drop.add("x", "a" * 26) is None  # dropped: longer than 25
    assert drop.count == 1 and sum(drop.filtered.values()) == 2
    strip = Accumulator("benchmark", "strip")
    assert strip.add("its", "it's") is True
    assert normalize_label("Don't!", "benchmark", "strip") == "dont"


def test_confusions_and_length_buckets():
    acc = Accumulator("exact")
    acc.add("c1ass", "class")
    acc.add("dog", "dog")
    assert acc.confusions[("l", "1")] == 1
    assert acc.by_length[5] == [0, 1] and acc.by_length[3] == [1, 1]


def test_caseless_protocol_keeps_symbols_and_spaces_but_not_case():
    acc = Accumulator("caseless")
    assert acc.add("Total Amount: $9.20", "TOTAL AMOUNT: $9.20")
    assert acc.add("TOTAL  AMOUNT: $9.20 ", "TOTAL AMOUNT: $9.20")  # runs of spaces read as one
    assert not acc.add("TOTAL AMOUNT $9.20", "TOTAL AMOUNT: $9.20")  # a lost colon is an error
    assert not acc.add("TOTALAMOUNT: $9.20", "TOTAL AMOUNT: $9.20")  # and so is a lost space
    assert acc.count == 4 and acc.correct == 2 and not acc.filtered
