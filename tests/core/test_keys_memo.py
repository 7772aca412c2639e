"""The memo of parsed keys holds at most two generations of BUDGET characters of text, however
large the texts a caller sends (a listing of hostile credentials cannot grow it without bound)."""

from __future__ import annotations

from bridge import keys
from bridge.keys import KeyPolicy


def test_large_texts_rotate_the_generations_and_the_oldest_go() -> None:
    memo = keys._Memo(1_000_000)  # the entry count never binds here: only the text budget
    big = keys.MAX_INPUT
    texts = [f"{i:08d}".ljust(big, "x") for i in range(3 * keys._Memo.BUDGET // big + 3)]
    for text in texts:
        memo.put((text, None, KeyPolicy()), ("refused", None))
    held = [t for t in texts if memo.get((t, None, KeyPolicy())) is not None]
    assert 0 < sum(map(len, held)) <= 2 * keys._Memo.BUDGET + big
    assert memo.get((texts[0], None, KeyPolicy())) is None
    assert memo.get((texts[-1], None, KeyPolicy())) == ("refused", None)


def test_a_text_above_the_input_limit_is_not_kept() -> None:
    memo = keys._Memo(10)
    text = "x" * (keys.MAX_INPUT + 1)
    assert memo.put((text, None, KeyPolicy()), ("refused", None)) == ("refused", None)
    assert memo.get((text, None, KeyPolicy())) is None
