"""scripts/default_model/restore_case.py: a teacher's case onto capitals-only labels, letters unchanged."""

from __future__ import annotations

import pytest
from scripts_util import load_script


@pytest.fixture(scope="module")
def transfer_case():
    return load_script("default_model/restore_case.py").transfer_case


@pytest.mark.parametrize(
    ("label", "read", "expected"),
    [
        ("RECEIPT NO.:003-1220815", "Receipt No.:003-1220815", "Receipt No.:003-1220815"),
        ("TOTAL AMOUNT: $9.20", "Total Amount: $9.20", "Total Amount: $9.20"),
        ("THANK YOU PLEASE COME AGAIN", "Thank you plese come Again", "Thank you PLEASE come Again"),
        ("CASH", "CASH", "CASH"),
        ("CASH", "CAS", "CASH"),  # a word read otherwise keeps the label's capitals
        ("GST 6%", "", "GST 6%"),  # the teacher read nothing
        ("1, JALAN DESA", "1, Jalan  Desa", "1, Jalan Desa"),  # spaces as in the label
    ],
)
def test_only_the_case_of_words_read_alike_changes(
    transfer_case, label: str, read: str, expected: str
) -> None:
    out = transfer_case(label, read)
    assert out == expected
    assert out.casefold() == label.casefold()  # never a letter, digit or symbol more or less
