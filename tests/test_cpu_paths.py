"""Fast paths of the engine's per-member work (issue 14): each gives exactly what the slow path gives."""

from __future__ import annotations

import json

import pytest

from contentgen.export import _RAW_BREAKS, escape_breaks, jsonl_line


@pytest.mark.parametrize("ch", ["\x85", "\u2028", "\u2029"], ids=ascii)
def test_escape_breaks_each_break_alone(ch):
    # the fast path skips str.translate when none of the three is present: each one alone must still be escaped
    text = json.dumps({"body": f"a{ch}b", "html": "<p>x</p>" * 50}, ensure_ascii=False)
    out = escape_breaks(text)
    assert out == text.translate(_RAW_BREAKS) and ch not in out
    assert json.loads(out) == json.loads(text)
    assert ch not in jsonl_line({"x": ch})


def test_escape_breaks_plain_text_unchanged():
    text = json.dumps({"body": "Hi — “quoted” café\n", "n": 1}, ensure_ascii=False)
    assert escape_breaks(text) is text
