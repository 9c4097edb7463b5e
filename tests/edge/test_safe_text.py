"""Untrusted text made printable: escapes shown as text, formulas neutralised, any string encodable."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from catdog.edge.safe_text import FORMULA_STARTS, csv_cell, visible

BOUNDED = settings(derandomize=True, deadline=None, max_examples=300)


def test_escape_sequences_and_newlines_are_shown_not_sent():
    assert visible("\x1b[31mdog\n") == "\\x1b[31mdog\\n"
    assert visible("a\rb\tc\x00d\x7fe\x9bf") == "a\\rb\\tc\\x00d\\x7fe\\x9bf"
    assert visible("line\u2028sep\u2029 \u202eevil") == "line\\u2028sep\\u2029 \\u202eevil"


def test_undecodable_file_name_bytes_show_as_the_bytes():
    name = os.fsdecode(b"cat\xff\x80.jpg")
    assert visible(name) == "cat\\xff\\x80.jpg"
    assert visible("\ud800") == "\\ud800"  # a surrogate no file name decodes to


def test_safe_text_is_unchanged():
    for text in ("cat", "dog 0.93  photos/é chat.jpg", "back\\slash", "日本の猫", "🐈"):
        assert visible(text) == text


def test_csv_cells_that_a_spreadsheet_would_run_get_a_quote():
    assert csv_cell("=cmd|' /C calc'!A0") == "'=cmd|' /C calc'!A0"
    for start in "=+-@":
        assert csv_cell(start + "1+1") == "'" + start + "1+1"
    assert csv_cell("\tx") == "\\tx" and csv_cell("cat") == "cat" and csv_cell(None) == ""


@BOUNDED
@given(st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40))
def test_visible_output_is_one_printable_encodable_line(text):
    shown = visible(text)
    shown.encode("utf-8")  # strict: no lone surrogate is left
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in shown)
    assert len(shown.splitlines()) <= 1  # splitlines also splits on U+2028, U+0085, ...
    assert visible(shown) == shown  # escaping twice changes nothing


@BOUNDED
@given(st.text(max_size=20))
def test_csv_cell_never_starts_a_formula(text):
    assert not csv_cell(text).startswith(FORMULA_STARTS)


def test_printable_text_needs_no_search():
    """visible() returns str.isprintable() text as it is: right only while every character it escapes is unprintable."""
    import re

    from catdog.edge.safe_text import _UNSAFE

    unsafe = re.findall(_UNSAFE, "".join(map(chr, range(0x110000))))
    assert len(unsafe) > 2000 and not any(char.isprintable() for char in unsafe)
