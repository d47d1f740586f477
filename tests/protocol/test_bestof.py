from __future__ import annotations

import pytest

from oversight.dialogue.transcript import Turn
from oversight.protocol.bestof import best_of

from .protocol_helpers import extractive_items, make_ctx, recording_model, scripted

ITEM = extractive_items(1)[0]
PROMPT = "This is round 1 of 3. Say something."


async def _run(selector: str, n: int = 3) -> tuple[list[Turn], list[str]]:
    model, api = recording_model(scripted(selector=selector))
    ctx = make_ctx(ITEM)
    turns = await best_of(
        ctx, model, PROMPT, n=n, speaker="Alice", role="debater", side=1, round=1,
        protocol="debate", history=[],
    )  # fmt: skip
    assert [c.role for c in ctx.calls] == ["debater"] * n + (["selector"] if n > 1 else [])
    return turns, api.prompts("selector")


async def test_selector_pick_is_chosen() -> None:
    turns, selector_prompts = await _run("Thinking it over.\nAnswer: c")
    assert [t.candidate for t in turns] == [0, 1, 2]
    assert [t.chosen for t in turns] == [False, False, True]
    assert not any(t.selection_invalid for t in turns)
    prompt = selector_prompts[0]
    assert "Candidate a:" in prompt and "Candidate c:" in prompt and "(a, b, c)" in prompt
    assert "SECRET" not in prompt


@pytest.mark.parametrize("reply", ["I like all of them.", "Answer: a or b", "Answer: d", ""])
async def test_invalid_selection_falls_back_to_first_and_is_counted(reply: str) -> None:
    turns, _ = await _run(reply)
    assert [t.chosen for t in turns] == [True, False, False]
    assert turns[0].selection_invalid and not turns[1].selection_invalid


async def test_selector_tokens_go_to_the_chosen_candidate() -> None:
    turns, _ = await _run("Answer: b")
    # RecordingAPI reports 10 input / 5 output tokens per call.
    assert [t.input_tokens for t in turns] == [10, 20, 10]
    assert [t.output_tokens for t in turns] == [5, 10, 5]


async def test_candidates_are_separate_samples() -> None:
    model, api = recording_model(scripted())
    ctx = make_ctx(ITEM)
    await best_of(ctx, model, PROMPT, n=4, speaker="Bob", role="debater", side=2, round=1,
                  protocol="debate", history=[])  # fmt: skip
    debater = [r for r in api.requests if r.metadata["role"] == "debater"]
    assert sorted(r.sample for r in debater) == [0, 1, 2, 3]
    assert all(r.n == 1 for r in api.requests)


async def test_n_equal_one_is_a_single_plain_call() -> None:
    turns, selector_prompts = await _run("Answer: a", n=1)
    assert len(turns) == 1 and turns[0].candidate is None and turns[0].chosen
    assert selector_prompts == []
