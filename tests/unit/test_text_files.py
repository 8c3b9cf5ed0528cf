"""Reading an operator's text file: UTF-8 without its byte order mark, or one reason why not."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync.text_files import UnreadableFileError, read_text_file


def test_a_byte_order_mark_is_dropped_and_only_a_leading_one(tmp_path: Path) -> None:
    file = tmp_path / "marked.csv"
    file.write_bytes(b"\xef\xbb\xbfa,b\n\xef\xbb\xbf\n")
    assert read_text_file(file) == "a,b\n\ufeff\n"


@pytest.mark.parametrize(("data", "where"), [
    (b"\xff\xfea", "byte 1 (line 1)"),                # UTF-16's byte order mark
    (b"ok\nok\nM\xfcller\n", "byte 8 (line 3)"),      # Latin-1
    (b"\xef\xbb\xbfcut \xe2\x82", "byte 8 (line 1)"),  # a character cut short at the end
])
def test_bytes_that_are_not_utf8_are_named_by_position(tmp_path: Path, data: bytes,
                                                       where: str) -> None:
    file = tmp_path / "garbage.bin"
    file.write_bytes(data)
    with pytest.raises(UnreadableFileError) as raised:
        read_text_file(file)
    assert str(raised.value) == f"{file}: cannot read file: not UTF-8 text at {where}"


def test_a_file_that_cannot_be_opened_says_why(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError) as raised:
        read_text_file(tmp_path)
    assert raised.value.reason == "Is a directory"
