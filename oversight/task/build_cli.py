"""`oversight build-task`: build GSM8KQA or CodeQA from upstream files with a real model.

The model is reached through the shared wrapper, so limits, retries and the response
cache apply: re-running a build costs nothing for the samples already drawn.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from oversight.errors import OversightError
from oversight.model.cache import ResponseCache
from oversight.model.card import resolve_model
from oversight.model.providers import make_api
from oversight.model.types import GenerateRequest, Message
from oversight.model.wrapper import CallFailure, Model
from oversight.task.build import BuildReport, build_codeqa, build_gsm8kqa
from oversight.task.sandbox import require_sandbox


def build_task(
    task: str, source: str, model_ref: str, samples: int, out: str, limit: int | None, unsafe_sandbox: bool = False
) -> BuildReport:
    src = Path(source)
    if not src.exists():
        raise OversightError(f"build-task {task}: source file not found: {src}.")
    # Before the model card and its key: without a sandbox nothing else matters.
    require_sandbox(unsafe_sandbox)
    card = resolve_model(model_ref, "build-task --model")
    card.api_key()

    async def main() -> BuildReport:
        model = Model(card, make_api(card), ResponseCache())

        async def generate(prompt: str, n: int) -> list[str]:
            request = GenerateRequest([Message.text("user", prompt)], n=n, metadata={"role": "programmer"})
            try:
                return (await model.generate(request)).texts
            except CallFailure as failure:
                print(f"warning: a generation failed and its problem is dropped: {failure}", file=sys.stderr)
                return []

        try:
            build = build_gsm8kqa if task == "gsm8kqa" else build_codeqa
            return await build(
                src, generate, samples, out, limit=limit, model_name=card.label, unsafe_sandbox=unsafe_sandbox
            )
        finally:
            await model.api.aclose()

    report = asyncio.run(main())
    print(f"{report.task}: {report.written} of {report.problems} problems written to {report.out}")
    for reason, n in sorted(report.dropped.items()):
        print(f"  dropped ({reason}): {n}")
    for outcome, n in sorted(report.programs.items()):
        print(f"  programs {outcome}: {n}")
    return report
