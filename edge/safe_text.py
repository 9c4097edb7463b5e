"""Untrusted text (labels from a model file, paths from disk) made safe to print in a terminal or a spreadsheet."""

from __future__ import annotations

import re

# C0 and C1 controls (ESC, CR, LF, TAB, ...), DEL, line/paragraph separators, bidi overrides and marks
# (which reorder what a terminal shows), and lone surrogates (bytes of a file name that are not UTF-8).
# Every one of them is outside str.isprintable(), so printable text needs no search; the pattern is
# compiled (and cached by re) on the first text that has something else: ~4M instructions at every start.
_UNSAFE = "[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

#: First characters that make a spreadsheet read a cell as a formula (OWASP CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def visible(text: object) -> str:
    """The text with every unsafe character shown as an escape, so printing it cannot move the cursor,
    colour the terminal, start a new line or fail to encode.

    ESC becomes the four characters \\x1b, a newline \\n, U+2028 \\u2028, and a file name's undecodable
    byte 0xff (the lone surrogate U+DCFF that os.fsdecode gives) \\xff. Safe text is returned unchanged.
    """
    text = str(text)
    return text if text.isprintable() else re.sub(_UNSAFE, _escape, text)


def csv_cell(text: object) -> str:
    """A text cell for CSV: visible() (None: empty), then prefixed with ' when a spreadsheet would run it as a formula."""
    cell = "" if text is None else visible(text)
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def _escape(match: re.Match) -> str:
    char = match.group()
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for the byte code - 0xDC00
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return _SHORT.get(char, f"\\x{code:02x}")
    return f"\\u{code:04x}"
