"""Reading a text file an operator names: a master data file, an admin configuration, an upload.

Every such file is UTF-8. A leading byte order mark is dropped, because spreadsheet programs
(Excel's "CSV UTF-8") and Windows editors write one, and left in it would become part of the
first column's name or a JSON syntax error. A file that cannot be read, or whose bytes are not
UTF-8, is one :class:`UnreadableFileError` whose reason says where, so each caller can turn it
into its own one-line error instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path

BYTE_ORDER_MARK = "\ufeff"


class UnreadableFileError(Exception):
    """``path: cannot read file: reason``, e.g. ``not UTF-8 text at byte 7 (line 2)``."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: cannot read file: {reason}")


def read_text_file(path: Path | str) -> str:
    """The text of ``path`` decoded as UTF-8 without a leading byte order mark."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as error:
        raise UnreadableFileError(str(file), error.strerror or str(error)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UnreadableFileError(str(file), _not_utf8_reason(data, error.start)) from None
    return text.removeprefix(BYTE_ORDER_MARK)


def _not_utf8_reason(data: bytes, offset: int) -> str:
    """Where the bytes stop being UTF-8: the byte counted from 1 (as ``cmp`` does, and as
    lines are) and its line, so that an operator can find it in an editor or a hex dump."""
    line = data.count(b"\n", 0, offset) + 1
    return f"not UTF-8 text at byte {offset + 1} (line {line})"
