"""The child process of a managed local model (oversight/model/local_server.py).

`python -m oversight.model.llama_serve CONFIG_JSON` loads the model into llama.cpp's
server (the `xllamacpp` wheel), listening on a free loopback port; prints one JSON line
`{"url": ...}` once the model is loaded; then serves until its stdin closes, which happens
when the harness stops it or dies, or until its parent is no longer the harness (`parent`
in the config), whichever comes first.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time


def _exit_when_orphaned(parent: int) -> None:
    # Reparented (to init or a subreaper) means the harness is gone, however it went.
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def main() -> None:
    cfg = json.loads(sys.argv[1])
    if cfg.get("parent"):
        threading.Thread(target=_exit_when_orphaned, args=(int(cfg["parent"]),), daemon=True).start()
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = cfg["model"]
    params.port = 0  # the kernel picks a free port; the server reports which
    params.n_parallel = int(cfg["slots"])
    params.n_ctx = int(cfg["context_window"]) * int(cfg["slots"])
    if cfg.get("threads"):
        params.cpuparams.n_threads = int(cfg["threads"])
        params.cpuparams_batch.n_threads = int(cfg["threads"])
    if cfg.get("chat_template"):
        params.chat_template = str(cfg["chat_template"])
    params.endpoint_props = True
    server = xllamacpp.Server(params)
    print(json.dumps({"url": server.listening_address}), flush=True)
    sys.stdin.read()
    # Straight out: the server's threads need no orderly goodbye, and its destructor can
    # wait on a request still being decoded.
    os._exit(0)


if __name__ == "__main__":
    main()
