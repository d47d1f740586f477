"""The run path reaches its first model call without pandas, pyarrow, scipy or matplotlib:
they cost about a second of startup on a CI-sized machine and are needed only to seal and
report (README, Benchmarks: Startup)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import json, sys
import oversight
from oversight.model import wrapper

heavy = ("pandas", "pyarrow", "scipy", "matplotlib")
seen = {}
generate = wrapper.Model.generate

async def first_call_watch(self, request):
    seen.setdefault("at_first_call", sorted(m for m in heavy if m in sys.modules))
    return await generate(self, request)

wrapper.Model.generate = first_call_watch
spec = {"name": "startup", "tasks": ["boolq"], "limit": 2, "protocols": ["qa"], "judges": ["sim/weak"]}
# Opening the run directory reads its journal (as a resume does) before the first call.
oversight.run(spec, out=sys.argv[1], cache="off")
print(json.dumps(seen))
"""


def test_no_heavy_import_before_the_first_call(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "run")], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"at_first_call": []}
