"""The word limit on what agents and judges say.

Words are whitespace-separated tokens that contain a letter or digit; passage tags are not
words. A reply over the limit is cut after the last allowed word. If the cut falls inside a
passage, the whole passage is dropped rather than closed early: a shortened quote can change
its meaning (stop just before a "not") and would still verify as an exact substring of the
article, so it would be certified as true.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"(</?(?:v_|u_)?passage\s*>)|((?:(?!</?(?:v_|u_)?passage\s*>)\S)+)", re.IGNORECASE)
_WORDLIKE = re.compile(r"\w")

def enforce_word_limit(text: str, limit: int) -> tuple[str, bool]:
    """(text cut to `limit` words, whether it was cut); see the module docstring."""
    count, open_at = 0, None
    for m in _TOKEN.finditer(text):
        tag = m.group(1)
        if tag is not None:
            open_at = None if tag.startswith("</") else m.start()
            continue
        if not _WORDLIKE.search(m.group(2)):
            continue
        count += 1
        if count > limit:
            cut = open_at if open_at is not None else m.start()
            return text[:cut].rstrip(), True
    return text, False

def count_words(text: str) -> int:
    return sum(1 for m in _TOKEN.finditer(text) if m.group(2) and _WORDLIKE.search(m.group(2)))
