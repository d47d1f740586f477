"""User-facing errors.

An `OversightError` carries one readable paragraph; the CLI prints it and exits with status 2
without a traceback. Raise it for anything a user can fix (a bad spec, card, task file,
missing key); let genuine bugs raise normally.

Messages quote offending values through `excerpt`, never whole: a value may be a megabyte
of text or an alias-expanded YAML structure, and the message must stay one short paragraph.
"""

from __future__ import annotations

import difflib
import re
import reprlib
from collections.abc import Iterable

EXCERPT_CHARS = 80

# reprlib stops descending into big containers after a few elements, so building the excerpt
# of a huge nested value costs as little as building the excerpt of a small one.
_repr = reprlib.Repr()
_repr.maxlevel = 3
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxdict = 6
_repr.maxstring = _repr.maxother = EXCERPT_CHARS
_repr.maxlong = 40


class OversightError(Exception):
    """A problem the user can fix, described in one paragraph."""

    exit_code = 2  # bad input


class RunStopped(OversightError):
    """A run that started but could not go on (the disk filled up, say): what finished is
    kept, and the message says how to finish it."""

    exit_code = 1


# What a secret looks like where the harness cannot know it (a line of a `.env` or a data
# file named by mistake): an assignment to a credential-named variable, or a token in the
# shape the big providers issue. An error message quoting a user's file shows neither.
_SECRET_ASSIGNMENT = re.compile(
    r"""(?P<name>[A-Za-z0-9_.-]*(?:key|token|secret|passw(?:or)?d|pwd|credential|auth)(?![a-z])[A-Za-z0-9_.-]*)"""
    r"""(?P<sep>["']?\s*[:=]\s*)(?P<value>"[^"]*"|'[^']*'|[^\s,;]+)""",
    re.IGNORECASE,
)
_SECRET_TOKEN = re.compile(
    r"\b(?:sk-[A-Za-z0-9_-]{16,}|sk-ant-[A-Za-z0-9_-]{16,}|AIza[0-9A-Za-z_-]{30,}|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|hf_[A-Za-z0-9]{30,}|eyJ[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_.-]+)"
)
HIDDEN = "[hidden]"


def hide_secret_looking(text: str) -> str:
    """`text` with secret-looking values replaced: for excerpts of files the user named,
    which may be a `.env` given by mistake. Give it an excerpt, not a whole file: the search
    is quadratic in the longest run of word characters."""
    text = _SECRET_TOKEN.sub(HIDDEN, text)
    return _SECRET_ASSIGNMENT.sub(lambda m: f"{m['name']}{m['sep']}{HIDDEN}", text)


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """A short repr of `value` for an error message: at most about `limit` characters."""
    try:
        text = repr(value) if isinstance(value, str) and len(value) <= limit else _repr.repr(value)
    except ValueError:  # repr() of an int with more than 4,300 digits
        text = f"<{type(value).__name__} too large to show>"
    text = hide_secret_looking(" ".join(text.split()))  # one paragraph, even for multi-line values
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def clip(text: str, limit: int = EXCERPT_CHARS) -> str:
    """`text` on one line, cut to about `limit` characters (no quotes added)."""
    # Cut before looking for secrets: the search is quadratic on a long run of word
    # characters (a 300,000-character field took minutes), and only the start is shown.
    flat = hide_secret_looking(" ".join(text[: 4 * limit + 64].split()))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def nearest(name: str, options: Iterable[str]) -> str | None:
    """The closest valid name to `name`, for 'did you mean' hints."""
    matches = difflib.get_close_matches(name[:200], list(options), n=1, cutoff=0.5)
    return matches[0] if matches else None


def unknown_name(kind: str, name: str, options: Iterable[str], where: str = "") -> OversightError:
    """An error for an unknown task/protocol/model/provider that lists what exists."""
    opts = sorted(set(options))
    hint = nearest(name, opts)
    did = f" Did you mean '{hint}'?" if hint else ""
    loc = f" in {where}" if where else ""
    listing = ", ".join(opts) if opts else "(none found)"
    return OversightError(f"Unknown {kind} '{clip(name)}'{loc}.{did} Available: {listing}.")
