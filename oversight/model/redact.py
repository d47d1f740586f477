"""Keeping secrets out of everything the harness writes or prints.

Providers and proxies sometimes quote the request back in an error body (headers
included), and that text would otherwise travel into the journal, the parquet tables and
the HTML report. Two defences, applied to any text before it is stored:

- a process-wide registry of secret values: every API key the run reads from the
  environment (`ModelCard.api_key()` and every provider adapter register theirs), plus the
  standard key variables whenever they are set; any occurrence is replaced;
- header-shaped patterns: whatever follows `Authorization`, `Proxy-Authorization`,
  `x-api-key`, `x-goog-api-key`, `api_key`, a `?key=` query parameter or a `Bearer `
  scheme, in header, JSON, Python-repr or query syntax, so a secret we never read (a
  proxy's own token) is caught too.

`ModelCallError` scrubs its message when it is made, so every classified provider error
is clean at its source; once a secret is registered, log records are scrubbed as well.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit, urlunsplit

REDACTED = "[REDACTED]"
# Shorter values would turn ordinary words into [REDACTED]; no real API key is this short.
MIN_SECRET_CHARS = 6
# Read by the SDKs themselves when no key is passed, so scrubbed whether or not a card named them.
STANDARD_KEY_ENVS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY")

_lock = threading.Lock()
_secrets: set[str] = set()
_secret_re: re.Pattern[str] | None = None
_log_factory_installed = False

_NAMES = r"(?:proxy-)?authorization|x-goog-api-key|x-api-key|api[-_]?key|(?<=[?&])key"
# name "sep" "value": JSON, Python reprs, (name, value) pairs; `q` may be an escaped quote
# when the JSON sits inside another JSON string.
_QUOTED = re.compile(
    rf"""(?P<name>{_NAMES})(?P<sep>\\?["']?[ \t]*[:=,][ \t]*)(?P<q>\\?["'])(?P<value>.*?)(?P=q)""",
    re.IGNORECASE,
)
_TOKEN = r"""[^\s"',;&}\])]+"""
# name: [scheme] value — header lines, query strings, env dumps.
_UNQUOTED = re.compile(
    rf"""(?P<name>{_NAMES})(?P<sep>[ \t]*[:=][ \t]*)(?P<scheme>(?:bearer|basic|token)[ \t]+)?(?P<value>{_TOKEN})""",
    re.IGNORECASE,
)
# A bare scheme: case-sensitive, as servers write it, so "the bearer of" stays prose.
_BEARER = re.compile(rf"(?P<scheme>\b(?:Bearer|BEARER)[ \t]+)(?P<value>{_TOKEN})")


def register(value: str | None) -> None:
    """Treat `value` as a secret from now on, in this process."""
    global _secret_re
    if not value or len(value.strip()) < MIN_SECRET_CHARS:
        return
    value = value.strip()
    # The forms in which a server may quote it back: raw, JSON-escaped, URL-encoded.
    forms = {value, json.dumps(value)[1:-1], quote(value, safe=""), quote_plus(value)}
    with _lock:
        if forms <= _secrets:
            return
        _secrets.update(forms)
        _secret_re = None
    _install_log_scrubber()


def is_registered(value: str) -> bool:
    with _lock:
        return value.strip() in _secrets


def scrub(text: str) -> str:
    """`text` with every registered secret and every header-shaped credential replaced
    by [REDACTED]. Idempotent."""
    if not text:
        return text
    for name in STANDARD_KEY_ENVS:
        register(os.environ.get(name))
    pattern = _pattern()
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    text = _QUOTED.sub(_quoted, text)
    text = _UNQUOTED.sub(_unquoted, text)
    return _BEARER.sub(_bearer, text)


def scrub_known(text: str) -> str:
    """`text` with every registered secret replaced, and nothing else: for replies and
    records, where a header-shaped phrase may be the model's own words (a code answer's
    `api_key = ...`) but a value the harness knows to be secret never belongs."""
    pattern = _pattern()
    return pattern.sub(REDACTED, text) if pattern is not None and text else text


def scrub_data(data: Any) -> Any:
    """Plain JSON-able `data` with every registered secret replaced in every string."""
    if _pattern() is None:
        return data
    return json.loads(scrub_known(json.dumps(data, default=str)))


_URL_SECRET_PARAMS = re.compile(r"key|token|secret|sig|signature|passw(?:or)?d|auth|credential", re.IGNORECASE)


def url_secrets(url: str) -> list[str]:
    """The credentials a URL carries: `user:password@` (the user alone when it is the only
    credential, as some gateways take a key there) and the values of key-like query
    parameters (`?key=`, `?api_key=`, `?token=`…)."""
    try:
        parts = urlsplit(url)
        found = [parts.password] if parts.password else [parts.username] if parts.username else []
        query = parse_qsl(parts.query, keep_blank_values=False)
    except ValueError:
        return []
    found += [v for k, v in query if _URL_SECRET_PARAMS.search(k)]
    return [unquote(s) for s in found if s]


def public_url(url: str) -> str:
    """`url` with its credentials (see url_secrets) replaced by [REDACTED], for manifests and listings."""
    secrets = url_secrets(url)
    for name in secrets:
        register(name)
    if not secrets:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        creds, host = netloc.rsplit("@", 1)
        user = creds.split(":", 1)[0] if parts.password else REDACTED
        netloc = f"{user}:{REDACTED}@{host}" if parts.password else f"{REDACTED}@{host}"
    query = "&".join(f"{k}={REDACTED}" if _URL_SECRET_PARAMS.search(k) else f"{quote_plus(k)}={quote_plus(v)}"
                     for k, v in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def clip(text: str, limit: int) -> str:
    """Scrub, then shorten: shortening first could cut a secret so that its remaining
    prefix no longer matches."""
    clean = scrub(text)
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def _pattern() -> re.Pattern[str] | None:
    global _secret_re
    with _lock:
        if _secret_re is None and _secrets:
            # Longest first, so a secret that contains another is replaced whole.
            alternatives = sorted(_secrets, key=len, reverse=True)
            _secret_re = re.compile("|".join(re.escape(s) for s in alternatives))
        return _secret_re


def _quoted(m: re.Match[str]) -> str:
    return f"{m['name']}{m['sep']}{m['q']}{REDACTED}{m['q']}"


def _unquoted(m: re.Match[str]) -> str:
    if m["value"].startswith("[REDACTED"):
        return m.group(0)
    return f"{m['name']}{m['sep']}{m['scheme'] or ''}{REDACTED}"


def _bearer(m: re.Match[str]) -> str:
    if m["value"].startswith("[REDACTED"):
        return m.group(0)
    return f"{m['scheme']}{REDACTED}"


def _install_log_scrubber() -> None:
    """Scrub every log record at creation, whichever handler later writes it.

    A record factory rather than a handler filter: it covers handlers configured later
    and by libraries, and a record's traceback text is rendered (and scrubbed) here too.
    """
    global _log_factory_installed
    with _lock:
        if _log_factory_installed:
            return
        _log_factory_installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string is logging's to report
            return record
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(factory)
