"""`oversight judge-ui RUN_DIR`: the web app (Starlette, served by uvicorn).

One process serves every judge: each browser holds a session cookie naming its judge;
the episodes, the journal and the models live in this process, on one event loop, so two
judges' verdicts never interleave a journal line. The process holds the run's lock
(store/lock.py) for as long as it serves: `oversight run --resume` cannot write the same
journal meanwhile, and a second judge-ui on the same run is refused the same way.

Safety:
- It listens on 127.0.0.1 unless told otherwise, and then accepts only Host headers that
  name this machine's loopback address (a page elsewhere cannot reach it by rebinding a
  domain name to 127.0.0.1).
- On any other address it requires an access token (given with --token or made at
  start-up and printed): the link carries it once, then a cookie does.
- Every POST must come from the app's own pages: its Origin (when the browser sends one)
  must be this server, and it must carry the session's CSRF token. Cookies are HttpOnly
  and SameSite=Strict; pages forbid inline script and framing (Content-Security-Policy).
- Nothing of the answer key reaches a page (pages.py); request bodies are size-capped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import re
import secrets
import socket
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import parse_qs

from oversight.errors import OversightError, clip
from oversight.humanui import pages
from oversight.humanui.episode import MAX_NOTE_CHARS, Episodes, Live, ModelPool, next_step, rounds_of
from oversight.humanui.run import HumanRun, Unit, human_episode_id, human_label, load_run
from oversight.model.wrapper import CallFailure
from oversight.store.journal import Journal, JournalWriteError
from oversight.store.lock import RunLock

if TYPE_CHECKING:  # starlette is an optional extra: imported where it is used
    from starlette.requests import Request
    from starlette.responses import Response

NAME = re.compile(r"[a-z0-9][a-z0-9_.\-]{0,39}")
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


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None  # required from every browser when set
    variants: list[str] | None = None  # only these protocol variants
    limit: int | None = None  # episodes per judge
    once_per_item: bool = False  # at most one episode of each item per judge


@dataclass
class Session:
    label: str
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))


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
            if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
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


class JudgeApp:
    """The routes, over one run's episodes."""

    def __init__(self, run: HumanRun, episodes: Episodes, settings: Settings) -> None:
        self.run = run
        self.episodes = episodes
        self.settings = settings
        self.sessions: dict[str, Session] = {}
        self.queues: dict[str, list[tuple[Unit, str]]] = {}  # judge -> (unit, their episode id) in order
        self.locks: dict[str, asyncio.Lock] = {}
        self.verdicts = 0  # submitted while this server ran

    # --- helpers -----------------------------------------------------------------------

    def session(self, request: Request) -> Session | None:
        sid = request.cookies.get(SESSION_COOKIE)
        return self.sessions.get(sid) if sid else None

    def queue(self, label: str) -> list[tuple[Unit, str]]:
        if label not in self.queues:
            s = self.settings
            units = self.run.queue(label, variants=s.variants, limit=s.limit, once_per_item=s.once_per_item)
            self.queues[label] = [(u, human_episode_id(label, u)) for u in units]
        return self.queues[label]

    def current(self, label: str) -> tuple[Unit | None, int, int]:
        """The judge's next undecided episode, how many they have decided, and how many
        they have in all."""
        queue = self.queue(label)
        done = 0
        first = None
        for u, hid in queue:
            if hid in self.run.done:
                done += 1
            elif first is None:
                first = u
        return first, done, len(queue)

    def lock(self, hid: str) -> asyncio.Lock:
        return self.locks.setdefault(hid, asyncio.Lock())

    def view(self, live: Live) -> pages.EpisodeView:
        unit, ep = live.unit, live.unit.ep
        opts = self.run.options(unit)
        step = next_step(live, opts)
        rounds = rounds_of(unit, opts) if unit.interactive else 0
        asked = sum(1 for t in live.turns if t.role == "judge_question")
        agents = [self.run.prep.debaters[a].model for a in (ep.agent, ep.agent_b) if a]
        from oversight.humanui.episode import assigned_side

        return pages.EpisodeView(
            protocol=ep.protocol,
            question=ep.item.question,
            answers=ep.item.shown(ep.order),
            images=ep.item.images,
            turns=self.episodes.transcript(live),
            extractive=ep.item.group == "extractive" and bool(ep.item.article),
            simulated=any(self.run.cards[m].provider == "sim" for m in agents if m in self.run.cards),
            side=assigned_side(unit),
            step=step,
            rounds=rounds,
            questions_left=max(0, rounds - 1 - asked),
            word_limit=opts.word_limit,
        )

    def episode_response(self, s: Session, live: Live, error: str = "", status: int = 200) -> Response:
        from starlette.responses import HTMLResponse

        _, done, total = self.current(s.label)
        progress = f" · episode {min(done + 1, total)} of {total}"
        page = pages.episode_page(self.view(live), who=s.label, progress=progress, csrf=s.csrf, nonce=live.nonce,
                                  error=error)
        return HTMLResponse(page, status_code=status)

    async def speak(self, live: Live) -> str:
        """Let the agents take their round; an error message for the page if a call failed."""
        try:
            await self.episodes.agents_speak(live)
        except CallFailure as failure:
            return (f"The model could not reply ({clip(str(failure), 300)}). Nothing is lost: try again, or come "
                    f"back later.")
        except OversightError as exc:  # e.g. a missing API key for the agent's model
            return f"The model cannot be called: {clip(str(exc), 400)}"
        except JournalWriteError as exc:
            return str(exc)
        except OSError as exc:  # the drafts file could not be written
            return f"Could not save the episode's progress ({exc.strerror or exc}); free some space and try again."
        return ""

    # --- routes ------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        from starlette.responses import HTMLResponse, RedirectResponse

        if self.session(request) is not None:
            return RedirectResponse("/episode", status_code=303)
        token = secrets.token_urlsafe(24)
        response = HTMLResponse(pages.name_page(self.run.prep.spec.name, csrf=token))
        response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict")
        return response

    async def start(self, request: Request) -> Response:
        from starlette.responses import HTMLResponse, RedirectResponse

        try:
            form = await read_form(request)
        except FormError as exc:
            return HTMLResponse(pages.message_page("Bad request", str(exc), link="/"), status_code=400)
        expected = request.cookies.get(LOGIN_COOKIE) or ""
        if not expected or not hmac.compare_digest(form.get("csrf", "").encode(), expected.encode()):
            return RedirectResponse("/", status_code=303)
        name = form.get("name", "").strip().lower()
        if not NAME.fullmatch(name):
            token = secrets.token_urlsafe(24)
            page = pages.name_page(self.run.prep.spec.name, csrf=token,
                                   error="A name is 1 to 40 letters, digits, '.', '_' or '-', starting with a letter "
                                         "or digit.")
            refused = HTMLResponse(page, status_code=400)
            refused.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict")
            return refused
        sid = secrets.token_urlsafe(24)
        self.sessions[sid] = Session(human_label(name))
        response = RedirectResponse("/episode", status_code=303)
        response.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="strict")
        response.delete_cookie(LOGIN_COOKIE)
        return response

    async def logout(self, request: Request) -> Response:
        from starlette.responses import RedirectResponse

        sid = request.cookies.get(SESSION_COOKIE)
        if sid:
            self.sessions.pop(sid, None)
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    async def episode(self, request: Request) -> Response:
        from starlette.responses import HTMLResponse, RedirectResponse

        s = self.session(request)
        if s is None:
            return RedirectResponse("/", status_code=303)
        unit, done, total = self.current(s.label)
        if unit is None:
            text = (f"You have judged all {total} episodes this server has for you. Thank you!" if total else
                    "This run has no episodes a person can judge (QA, debate or consultancy).")
            return HTMLResponse(pages.message_page("All done", text, s.label, link="/logout",
                                                   link_text="Switch judge"))
        live = self.episodes.open(s.label, unit)
        error = ""
        async with self.lock(live.hid):
            if next_step(live, self.run.options(unit)) == "agents":
                error = await self.speak(live)
        return self.episode_response(s, live, error)

    async def _post(self, request: Request, act: Callable[[Session, Live, dict[str, str]], Awaitable[Response | None]]
                    ) -> Response:
        """The checks every episode form passes: a session, its CSRF token, the current
        episode and its current step (a stale or repeated form is ignored)."""
        from starlette.responses import HTMLResponse, RedirectResponse

        s = self.session(request)
        if s is None:
            return RedirectResponse("/", status_code=303)
        try:
            form = await read_form(request)
        except FormError as exc:
            return HTMLResponse(pages.message_page("Bad request", str(exc), s.label), status_code=400)
        if not hmac.compare_digest(form.get("csrf", "").encode(), s.csrf.encode()):
            return HTMLResponse(pages.message_page("Refused", "This form is not from your session.", s.label),
                                status_code=403)
        unit, _, _ = self.current(s.label)
        if unit is None:
            return RedirectResponse("/episode", status_code=303)
        live = self.episodes.open(s.label, unit)
        async with self.lock(live.hid):
            if not hmac.compare_digest(form.get("nonce", "").encode(), live.nonce.encode()):
                return RedirectResponse("/episode", status_code=303)  # already acted on
            response = await act(s, live, form)
        return response or RedirectResponse("/episode", status_code=303)

    async def ask(self, request: Request) -> Response:
        async def act(s: Session, live: Live, form: dict[str, str]) -> Response | None:
            if next_step(live, self.run.options(live.unit)) != "question":
                return None
            if not self.episodes.ask(live, form.get("question", "")):
                return self.episode_response(s, live, "Type a question first.", 400)
            error = await self.speak(live)
            return self.episode_response(s, live, error) if error else None

        return await self._post(request, act)

    async def resume(self, request: Request) -> Response:
        async def act(s: Session, live: Live, form: dict[str, str]) -> Response | None:
            if next_step(live, self.run.options(live.unit)) != "agents":
                return None
            error = await self.speak(live)
            return self.episode_response(s, live, error) if error else None

        return await self._post(request, act)

    async def verdict(self, request: Request) -> Response:
        async def act(s: Session, live: Live, form: dict[str, str]) -> Response | None:
            if next_step(live, self.run.options(live.unit)) != "verdict":
                return None
            answer, confidence = form.get("answer", ""), form.get("confidence", "")
            if answer not in ("1", "2"):
                return self.episode_response(s, live, "Choose answer 1 or answer 2.", 400)
            if not confidence.isdigit() or not 50 <= int(confidence) <= 100:
                return self.episode_response(s, live, "Confidence is a whole number from 50 to 100.", 400)
            note = form.get("note", "").strip()[:MAX_NOTE_CHARS]
            try:
                self.episodes.decide(live, int(answer), int(confidence) / 100, note,
                                     pages.view_text(self.view(live)))
            except JournalWriteError as exc:
                return self.episode_response(s, live, f"Your verdict could not be saved: {exc}", 500)
            self.verdicts += 1
            return None

        return await self._post(request, act)

    async def favicon(self, request: Request) -> Response:
        from starlette.responses import Response

        return Response(status_code=204)  # none, and no error in the browser's console

    async def static(self, request: Request) -> Response:
        from starlette.responses import Response

        name = request.path_params["name"]
        if name == "ui.css":
            return Response(pages.STYLE, media_type="text/css")
        if name == "ui.js":
            return Response(pages.SCRIPT, media_type="text/javascript")
        return Response("Not Found", status_code=404, media_type="text/plain")


def require_framework() -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:  # pragma: no cover - the extra is in `dev`
        raise OversightError(
            "`oversight judge-ui` needs the web framework of the `ui` extra (Starlette and uvicorn): "
            "pip install 'oversight[ui]'."
        ) from None


def create_app(judge: JudgeApp, allowed_hosts: set[str] | None, token: str | None,
               on_shutdown: Callable[[], Awaitable[None]] | None = None) -> Any:
    from starlette.applications import Starlette
    from starlette.routing import Route

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        if on_shutdown is not None:
            await on_shutdown()

    routes = [
        Route("/", judge.index, methods=["GET"]),
        Route("/start", judge.start, methods=["POST"]),
        Route("/logout", judge.logout, methods=["GET"]),
        Route("/episode", judge.episode, methods=["GET"]),
        Route("/ask", judge.ask, methods=["POST"]),
        Route("/continue", judge.resume, methods=["POST"]),
        Route("/verdict", judge.verdict, methods=["POST"]),
        Route("/static/{name}", judge.static, methods=["GET"]),
        Route("/favicon.ico", judge.favicon, methods=["GET"]),
    ]
    return Guard(Starlette(routes=routes, lifespan=lifespan), allowed_hosts, token)


def bind(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise OversightError(f"judge-ui cannot listen on {host}:{port}: {exc.strerror or exc}. Choose another "
                             f"--port (or --host).") from None
    # Listening from here on: a browser opening the printed link before uvicorn has started
    # waits in the backlog instead of being refused.
    sock.listen(128)
    return sock


class JudgeServer:
    """A judge-ui server over one run: the lock, the journal, the socket, and sealing.

    `run()` serves in the calling thread until interrupted (the CLI); `start()` serves in a
    background thread and `stop()` ends it (tests). Either way the run's tables are sealed
    from the journal when the server starts and again when it stops, so `oversight report`
    and `oversight.load` see every human verdict; a killed server's verdicts are in the
    journal and are sealed by the next start, `--seal`, or any `oversight run --resume`.
    """

    def __init__(self, run_dir: Path, settings: Settings, stream: TextIO | None = None) -> None:
        require_framework()  # before anything is locked or bound
        self.run_dir = Path(run_dir)
        self.settings = settings
        self.stream = stream or sys.stderr
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self.lock = RunLock(self.run_dir)
        self.lock.acquire()
        sock: socket.socket | None = None
        journal: Journal | None = None
        try:
            self.run = load_run(self.run_dir)
            _check_variants(self.run, settings.variants)
            seal(self.run)
            sock = bind(settings.host, settings.port)
            self.port = sock.getsockname()[1]
            loopback = is_loopback(settings.host)
            if not loopback and settings.token is None:
                settings.token = secrets.token_urlsafe(18)
            journal = Journal(self.run_dir, self.run.known_prompts)
            from oversight.model.cache import ResponseCache

            spec = self.run.prep.spec
            cache = ResponseCache.for_mode(Path(spec.cache_dir).expanduser() if spec.cache_dir else None, "on",
                                           warn=lambda m: print(f"note: {m}", file=self.stream, flush=True))
            self.models = ModelPool(self.run.cards, cache)
            self.episodes = Episodes(self.run, journal, self.models)
        except BaseException:
            if journal is not None:
                journal.close()
            if sock is not None:
                sock.close()
            self.lock.release()
            raise
        self.sock, self.journal = sock, journal
        self.judge = JudgeApp(self.run, self.episodes, settings)
        hosts = None
        if loopback:
            hosts = {f"{h}:{self.port}" for h in ("127.0.0.1", "localhost", "[::1]")}
            hosts.add(f"{settings.host.lower()}:{self.port}")
        self.app = create_app(self.judge, hosts, settings.token, self.models.aclose)

    @property
    def url(self) -> str:
        host = self.settings.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}/"

    def banner(self) -> str:
        units = self.run.units if self.settings.variants is None else [
            u for u in self.run.units if u.variant in self.settings.variants]
        kinds: dict[str, int] = {}
        for u in units:
            kinds[u.variant] = kinds.get(u.variant, 0) + 1
        listing = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "none"
        lines = [f"oversight judge-ui: {len(units)} episodes per judge in {self.run_dir} ({listing})."]
        if self.run.missing_transcripts:
            lines.append(f"note: {self.run.missing_transcripts} debate transcript(s) are not in the journal yet and "
                         f"are left out; finish the run (oversight run … --resume) to judge them.")
        if self.settings.token:
            lines.append(f"Open {self.url}?token={self.settings.token}")
            if not is_loopback(self.settings.host):
                lines.append("The server listens beyond this machine, so every browser needs this token (give the "
                             "link to your judges; on 0.0.0.0 use this machine's address).")
        else:
            lines.append(f"Open {self.url}")
        lines.append("Verdicts are saved to the run's journal as they are submitted. Ctrl-C stops the server.")
        return "\n".join(lines)

    def _uvicorn(self) -> Any:
        import uvicorn

        config = uvicorn.Config(self.app, log_level="warning", lifespan="on", server_header=False,
                                date_header=False, access_log=False)
        return uvicorn.Server(config)

    def run_forever(self) -> None:
        self._server = self._uvicorn()
        print(self.banner(), file=self.stream, flush=True)
        try:
            self._server.run(sockets=[self.sock])
        except KeyboardInterrupt:
            pass  # uvicorn re-raises the Ctrl-C it handled; stopping is the normal end
        finally:
            self.close()

    def start(self) -> JudgeServer:
        self._server = self._uvicorn()
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join()
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.episodes.close()
            self.journal.close()
            with contextlib.suppress(OSError):
                self.sock.close()
            seal(self.run)
        finally:
            self.lock.release()

    def __enter__(self) -> JudgeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _check_variants(run: HumanRun, variants: list[str] | None) -> None:
    if variants is None:
        return
    have = sorted({u.variant for u in run.units})
    unknown = [v for v in variants if v not in have]
    if unknown:
        raise OversightError(
            f"--protocols: {', '.join(unknown)} has no episodes a person can judge in {run.run_dir}; "
            f"it has: {', '.join(have) or 'none'} (qa_with_article is never shown to people: it shows the article)."
        )


def seal(run: HumanRun) -> None:
    """Write the run's parquet tables from its journal, human verdicts included."""
    from oversight.engine.execute import item_row
    from oversight.engine.runner import seal_run

    prep = run.prep
    listed = [prep.variants[n] for n in prep.spec.protocols]
    items = [item_row(i) for its in prep.items.values() for i in its]
    seal_run(run.run_dir, listed, items)


def seal_only(run_dir: Path) -> int:
    """Seal a run's tables under its lock (after a killed server); the human rows' count."""
    with RunLock(Path(run_dir)):
        run = load_run(Path(run_dir))
        seal(run)
    return len(run.done)
