"""The garbage collector during a run.

A run allocates many short-lived objects per model call (the SDK's requests, responses and
futures) while a large heap that never changes sits beside them: the imported modules (the
provider SDKs define thousands of classes), the items and the plan. CPython's collector
runs a young collection every 700 net allocations and now and then a full one, which walks
that whole heap again. `benchmarks/overhead.py` measured collection at 1.3 s of a 10 s
run of 5,000 calls (a gc callback timing each collection). Freezing the heap built before
the first call (`gc.freeze`: the collector leaves it alone from then on) and collecting
the young generation every 20,000 allocations cut that to about 0.01 s; reference
counting still frees everything as before, and cyclic garbage waits at most one collection.

Both settings are process-wide, so they are put back when the run ends: a notebook that
calls `oversight.run` keeps its own.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 20_000


@contextmanager
def quiet_collector() -> Iterator[None]:
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(old[0], YOUNG_THRESHOLD), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()
