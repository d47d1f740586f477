"""`oversight judge-ui RUN_DIR`: the server process over one run.

It holds the run's lock (store/lock.py) for as long as it serves: `oversight run --resume`
cannot write the same journal meanwhile, and a second judge-ui on the same run is refused
the same way. It listens on 127.0.0.1 unless told otherwise; on any other address it makes
an access token (unless given one) and prints it in the link. The run's parquet tables are
sealed from the journal when it starts and when it stops.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

from oversight.errors import OversightError
from oversight.humanui.episode import Episodes, ModelPool
from oversight.humanui.guard import is_loopback
from oversight.humanui.run import HumanRun, load_run
from oversight.humanui.server import JudgeApp, Settings, create_app, require_framework

__all__ = ["JudgeServer", "Settings", "bind", "seal", "seal_only"]
from oversight.model import redact
from oversight.store.journal import Journal
from oversight.store.lock import RunLock


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
            journal = Journal(self.run_dir, self.run.known_prompts, scrub=redact.scrub_known)
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
