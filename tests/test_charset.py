from __future__ import annotations

import pytest

from crnn_cli.core.charset import load_charset
from crnn_cli.core.errors import UsageError


def test_default_is_paddleocr_lowercase_digits_letters():
    cs = load_charset(None)
    assert cs.num_classes == 37
    assert cs.symbols[:3] == ("0", "1", "2") and cs.symbols[-1] == "z"
    assert cs.encode("AbC") == cs.encode("abc") == [11, 12, 13]
    assert cs.decode([11, 0, 12]) == "ab"


def test_en_with_space():
    cs = load_charset("en", use_space_char=True)
    assert cs.num_classes == 10 + 26 + 26 + 32 + 1 + 1
    assert cs.symbols[-1] == " " and cs.use_space_char
    assert cs.encode("Hi there!") is not None
    assert cs.encode("café") is None
    assert cs.unknown_symbols("café") == {"é"}


def test_file_dictionary_crlf_bom_and_space(tmp_path):
    f = tmp_path / "d.txt"
    f.write_bytes("\ufeffa\r\nb\r\n \r\n".encode())
    cs = load_charset(f)
    assert cs.symbols == ("a", "b", " ")
    # PaddleOCR appends the space class even when the file already ends with one.
    assert load_charset(f, use_space_char=True).num_classes == 5


def test_missing_dictionary_is_a_usage_error():
    with pytest.raises(UsageError, match="neither a built-in"):
        load_charset("no-such-dict.txt")


def test_class_count_mismatch_explains_the_fix():
    cs = load_charset("en")
    with pytest.raises(UsageError, match="--use-space-char"):
        cs.check_classes(cs.num_classes + 1)
    with pytest.raises(UsageError, match="predicts 6625"):
        cs.check_classes(6625)
    cs.check_classes(cs.num_classes)
