"""Word error rate with one normalisation, so engines that write "10", "Mr." or "ten" compare fairly."""

from __future__ import annotations

import re

__all__ = ["normalise_words", "word_error_rate", "word_errors"]

_ONES = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
]  # fmt: skip
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SPELLING = {"mr": "mister", "mrs": "missus", "dr": "doctor", "ok": "okay"}
_NOT_WORD = re.compile(r"[^\w' ]+")


def _number_words(token: str) -> list[str]:
    """0-99 as words ("21" → "twenty one"); longer digit runs digit by digit ("123" → "one two three")."""
    value = int(token)
    if len(token) > 2 or (len(token) == 2 and token[0] == "0"):
        return [_ONES[int(digit)] for digit in token]
    if value < 20:
        return [_ONES[value]]
    tens, ones = divmod(value, 10)
    return [_TENS[tens]] + ([_ONES[ones]] if ones else [])


def normalise_words(text: str) -> list[str]:
    """Lower case, no punctuation, digits as words, common abbreviations spelled out."""
    words: list[str] = []
    for token in _NOT_WORD.sub(" ", text.lower().replace("-", " ")).split():
        token = token.strip("'")
        if not token:
            continue
        if token.isdigit():
            words.extend(_number_words(token))
        else:
            words.append(_SPELLING.get(token, token))
    return words


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, reference length) after normalising both."""
    ref, hyp = normalise_words(reference), normalise_words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, 1):
        previous, row[0] = row[:], i
        for j, hyp_word in enumerate(hyp, 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word))
    return row[len(hyp)], len(ref)


def word_error_rate(reference: str, hypothesis: str) -> float:
    errors, length = word_errors(reference, hypothesis)
    return errors / length if length else float(errors > 0)
