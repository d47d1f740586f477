"""Checking quoted passages against the article (extractive tasks only).

Agents quote the article inside `<passage>…</passage>`. Before anyone else sees a turn,
every quote is looked up in the article and re-tagged `<v_passage>` (found) or
`<u_passage>` (not found); judges are told to trust only the former.

Matching modes:
- `exact`: the quote must occur in the article after collapsing runs of whitespace.
- `tolerant`: additionally ignores case, punctuation and quote/dash style (curly vs
  straight quotes, en/em dashes vs hyphens, apostrophes), for models that re-type
  punctuation.

In both modes the match must start and end on word boundaries, so quoting "happy" out of
"unhappy" does not verify. Tags an agent writes itself as `<v_passage>` or `<u_passage>`
are checked like `<passage>` (an agent must not be able to forge a verified quote), and an
unpaired tag is removed, since nothing after it can be checked. An empty quote is
unverified: there is nothing to vouch for.

Closed and multimodal tasks have no article: their prompts never mention passages and
nothing is verified (callers skip `verify` for them).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Literal, NamedTuple

MatchMode = Literal["exact", "tolerant"]
MODES: tuple[str, ...] = ("exact", "tolerant")

_ANY_TAG = r"</?(?:v_|u_)?passage\s*>"
_PAIR = re.compile(r"<(?:v_|u_)?passage\s*>(.*?)</(?:v_|u_)?passage\s*>", re.IGNORECASE | re.DOTALL)
_STRAY = re.compile(_ANY_TAG, re.IGNORECASE)
_WS = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s]")
_STYLE = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
        "\u00ab": '"', "\u00bb": '"',
        "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-",
        "\u2015": "-", "\u2212": "-",
    }
)  # fmt: skip


class Checked(NamedTuple):
    text: str  # the argument with every passage re-tagged
    n_verified: int
    n_unverified: int


@lru_cache(maxsize=256)
def normalise(text: str, mode: str) -> str:
    """The form quotes and articles are compared in (see the module docstring)."""
    if mode not in MODES:
        raise ValueError(f"unknown passage match mode {mode!r}; expected one of {MODES}")
    if mode == "tolerant":
        text = unicodedata.normalize("NFKC", text).translate(_STYLE).casefold()
        # Apostrophes vanish ("don't" = "dont"); other punctuation becomes a space, so
        # "well-known" matches "well known".
        text = _PUNCT.sub(" ", text.replace("'", ""))
    return _WS.sub(" ", text).strip()


def found(quote: str, article: str, mode: str = "exact") -> bool:
    """Whether `quote` occurs in `article` under `mode`, on word boundaries."""
    q = normalise(_STRAY.sub(" ", quote), mode)
    if not q:
        return False
    pattern = r"(?<!\w)" + re.escape(q) + r"(?!\w)"
    return re.search(pattern, normalise(article, mode)) is not None


def verify(argument: str, article: str, mode: str = "exact") -> Checked:
    """Re-tag every passage in `argument` as verified or unverified against `article`."""
    counts = [0, 0]

    def retag(m: re.Match[str]) -> str:
        quote = _STRAY.sub("", m.group(1))
        ok = found(quote, article, mode)
        counts[0 if ok else 1] += 1
        tag = "v_passage" if ok else "u_passage"
        return f"<{tag}>{quote}</{tag}>"

    text = _PAIR.sub(retag, argument)
    # Any tag still outside our re-tagged pairs is unpaired: drop it.
    pieces = re.split(r"(<[vu]_passage>.*?</[vu]_passage>)", text, flags=re.DOTALL)
    text = "".join(p if i % 2 else _STRAY.sub("", p) for i, p in enumerate(pieces))
    return Checked(text, counts[0], counts[1])


def strip_tags(text: str) -> str:
    """The text with every passage tag removed (quotes kept), e.g. for word counting."""
    return _STRAY.sub("", text)


COPY_SPAN = 8  # words in a row that count as copied from the article


@lru_cache(maxsize=16)
def _article_grams(article: str, span: int) -> frozenset[tuple[str, ...]]:
    # Every agent turn of an episode checks against the same article: build its runs once.
    source = normalise(article, "tolerant").split()
    return frozenset(tuple(source[i : i + span]) for i in range(len(source) - span + 1))


def copied_words(visible: str, article: str, span: int = COPY_SPAN) -> int:
    """How many words of `visible` outside passage tags stand in a run of `span` or more
    words that also occurs in the article (compared in the tolerant form). Quoting is the
    sanctioned way to use the article; text copied untagged reaches the judge unchecked (a
    small model restating its prompt, say), so it is counted on every agent turn."""
    outside = _PAIR.sub(" ", visible)
    words = normalise(_STRAY.sub(" ", outside), "tolerant").split()
    if len(words) < span:
        return 0
    grams = _article_grams(article, span)
    covered = [False] * len(words)
    for i in range(len(words) - span + 1):
        if tuple(words[i : i + span]) in grams:
            covered[i : i + span] = [True] * span
    return sum(covered)
