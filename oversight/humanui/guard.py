"""The web app's safety checks, around every request (an ASGI middleware) and every form.

- Served on 127.0.0.1 (the default), only Host headers that name this machine's loopback
  address are answered: a page elsewhere cannot reach the app by rebinding a domain name
  to 127.0.0.1.
- Served on any other address, every browser needs the access token (given with --token
  or made at start-up and printed): the printed link carries it once, then a cookie does,
  and the token leaves the address bar at once.
- A POST must come from the app's own pages: its Origin (when the browser sends one) must
  be this server; forms carry a CSRF token (server.py); bodies are capped.
- Every response forbids inline script, framing and sniffing, and is never cached.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from oversight.humanui import pages

if TYPE_CHECKING:  # starlette is an optional extra: imported where it is used
    from starlette.requests import Request

MAX_BODY = 64 * 1024
SESSION_COOKIE, ACCESS_COOKIE, LOGIN_COOKIE = "ov_session", "ov_access", "ov_login"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
                                 b"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # Not no-referrer: under it a browser sends `Origin: null` with the app's own forms, and
    # the origin check could not tell them from a sandboxed page elsewhere.
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Guard:
    """ASGI middleware: Host and token checks, POST origin check, body cap, safety headers."""

    def __init__(self, app: Any, allowed_hosts: set[str] | None, token: str | None) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts
        self.token = token

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")

        async def send_safe(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        async def refuse(status: int, title: str, text: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
            body = pages.message_page(title, text, link="/", link_text="Start page").encode()
            await send_safe({"type": "http.response.start", "status": status,
                             "headers": [(b"content-type", b"text/html; charset=utf-8"), *(extra or [])]})
            await send_safe({"type": "http.response.body", "body": body})

        if self.allowed_hosts is not None and host.lower() not in self.allowed_hosts:
            await refuse(421, "Wrong address", "This server answers only at its loopback address.")
            return
        if scope["method"] == "POST":
            origin = headers.get("origin")
            if origin is not None and origin != f"http://{host}":
                await refuse(403, "Refused", "A form from another site cannot be sent to this server.")
                return
            length = headers.get("content-length")
            if length is not None and (not (length.isascii() and length.isdigit()) or int(length) > MAX_BODY):
                await refuse(413, "Too large", "That form is too large.")
                return
        if self.token is not None:
            given = _cookie(headers.get("cookie", ""), ACCESS_COOKIE)
            query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
            if query and hmac.compare_digest(query.encode(), self.token.encode()):
                # The token leaves the address bar at once; from now on the cookie carries it.
                cookie = f"{ACCESS_COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                await send_safe({"type": "http.response.start", "status": 303,
                                 "headers": [(b"location", scope["path"].encode()),
                                             (b"set-cookie", cookie.encode())]})
                await send_safe({"type": "http.response.body", "body": b""})
                return
            if not (given and hmac.compare_digest(given.encode(), self.token.encode())):
                await refuse(403, "Access token needed", "This server needs the access token it printed when it "
                             "started: open the link it printed (http://…/?token=…).")
                return
        await self.app(scope, receive, send_safe)


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return v
    return None


class FormError(Exception):
    pass


async def read_form(request: Request) -> dict[str, str]:
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise FormError("expected a form")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise FormError("form too large")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=16, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormError("unreadable form") from exc
    return {k: v[0] for k, v in parsed.items()}
