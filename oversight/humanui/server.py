"""The web app's routes (Starlette): judges, sessions, episodes and their forms.

One process serves every judge: each browser holds a session cookie naming its judge; the
episodes, the journal and the models live in this process, on one event loop, so two
judges' verdicts never interleave a journal line. A form acts only for its session (CSRF
token) and only on the step it was made for (the episode's nonce): a repeated or stale
form is ignored. The safety checks around every request are in guard.py; the process,
the run lock and sealing in serve.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from oversight.errors import OversightError, clip
from oversight.humanui import pages
from oversight.humanui.episode import MAX_NOTE_CHARS, Episodes, Live, next_step, rounds_of
from oversight.humanui.guard import LOGIN_COOKIE, SESSION_COOKIE, FormError, Guard, read_form
from oversight.humanui.run import HumanRun, Unit, human_episode_id, human_label
from oversight.model.wrapper import CallFailure
from oversight.store.journal import JournalWriteError

if TYPE_CHECKING:  # starlette is an optional extra: imported where it is used
    from starlette.requests import Request
    from starlette.responses import Response

NAME = re.compile(r"[a-z0-9][a-z0-9_.\-]{0,39}")


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None  # required from every browser when set
    variants: list[str] | None = None  # only these protocol variants
    limit: int | None = None  # episodes per judge
    views: str = "one"  # one view per item per judge, balanced over the judges; "all": every view


@dataclass
class Session:
    label: str
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))


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
            units = self.run.queue(label, variants=s.variants, limit=s.limit, views=s.views)
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

        title, whom = unit.protocol.human_titles()
        return pages.EpisodeView(
            protocol=ep.protocol,
            intro=unit.protocol.human_instructions(ep, opts, asking=unit.interactive and step != "verdict"),
            transcript_title=None if unit.mode == "alone" else title,
            whom=whom,
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
            if not (confidence.isascii() and confidence.isdigit()) or not 50 <= int(confidence) <= 100:
                return self.episode_response(s, live, "Choose how sure you are (50% to 100%).", 400)
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
