from __future__ import annotations

import pytest

from oversight.dialogue.transcript import Turn
from oversight.dialogue.words import count_words, enforce_word_limit
from oversight.model.types import GenerateResponse, Usage
from oversight.protocol.agent import agent_prompt, make_turn, split_reply

from .protocol_helpers import closed_items, extractive_items, make_ctx

ITEM = extractive_items(1)[0]


@pytest.mark.parametrize(
    ("reply", "private", "visible"),
    [
        ("Thinking: plan\nArgument: case", "plan", "case"),
        ("**Thinking:** plan\n\n**Argument:** case", "plan", "case"),
        ("## Thinking\nplan\n## Argument:\ncase", "## Thinking\nplan", "case"),
        ("thinking: plan\nARGUMENT: case\nmore", "plan", "case\nmore"),
        ("Just an argument with no headers.", "", "Just an argument with no headers."),
        ("Thinking: only thoughts, never shown", "only thoughts, never shown", ""),
        ("Thinking: a\nArgument: b\nThinking: c", "a\nc", "b"),
        ("Argument: the case", "", "the case"),
    ],
)
def test_split_reply(reply: str, private: str, visible: str) -> None:
    assert split_reply(reply) == (private, visible)


def test_word_limit_counts_words_not_tags() -> None:
    text = "one two <passage>three four</passage> five"
    assert count_words(text) == 5
    assert enforce_word_limit(text, 5) == (text, False)
    assert count_words("a - b") == 2  # a lone dash is not a word


def test_cut_outside_a_passage() -> None:
    assert enforce_word_limit("a b c d e", 3) == ("a b c", True)
    text = "a <passage>b c</passage> d e"
    assert enforce_word_limit(text, 3) == ("a <passage>b c</passage>", True)


def test_cut_inside_a_passage_drops_the_whole_passage() -> None:
    text = "a b <passage>c d e f</passage> g"
    assert enforce_word_limit(text, 4) == ("a b", True)
    assert enforce_word_limit("<passage>w x y z</passage>", 2) == ("", True)


def test_cut_in_second_passage_keeps_the_first() -> None:
    text = "<passage>a b</passage> c <passage>d e f</passage>"
    assert enforce_word_limit(text, 4) == ("<passage>a b</passage> c", True)


def test_make_turn_truncates_then_verifies() -> None:
    sentence = ITEM.article.split(". ")[0] + "."  # type: ignore[union-attr]
    limit = count_words(sentence) + 4
    ctx = make_ctx(ITEM, word_limit=limit)
    reply = f"Thinking: secret\nArgument: <passage>{sentence}</passage> <passage>Made up.</passage> " + ("word " * 30)
    turn = make_turn(ctx, GenerateResponse([reply], Usage(7, 3)), speaker="Alice", role="debater", side=1, round=1)
    assert turn.private == "secret"
    assert turn.truncated
    assert count_words(turn.visible) == limit
    assert turn.visible.startswith("<v_passage>")
    assert (turn.n_verified, turn.n_unverified) == (1, 1)
    assert (turn.input_tokens, turn.output_tokens) == (7, 3)


def test_make_turn_closed_tasks_do_not_verify() -> None:
    ctx = make_ctx(closed_items(1)[0])
    reply = "Argument: <passage>anything</passage>"
    turn = make_turn(ctx, GenerateResponse([reply]), speaker="Bob", role="debater", side=2, round=1)
    assert turn.visible == "<passage>anything</passage>"
    assert (turn.n_verified, turn.n_unverified, turn.truncated) == (0, 0, False)


def test_agent_prompt_shows_visible_history_only() -> None:
    ctx = make_ctx(ITEM, word_limit=99)
    history = [
        Turn(1, "Alice", "debater", 1, "visible-a", private="hidden-a"),
        Turn(1, "Bob", "debater", 2, "loser", private="hidden-b", candidate=0, chosen=False),
        Turn(1, "Bob", "debater", 2, "visible-b", private="hidden-c", candidate=1),
        Turn(2, "Judge", "judge_question", None, ""),
    ]
    prompt = agent_prompt(ctx, "debater", name="Bob", side=2, opponent="Alice", history=history, instruction="GO")
    assert "visible-a" in prompt and "visible-b" in prompt and "loser" not in prompt
    assert "hidden" not in prompt
    assert "(no argument given)" in prompt
    assert "99 words" in prompt and "<article>" in prompt
    # The round's steps come last, before only the closing reminder about passage tags.
    assert prompt.index("GO") > prompt.index("visible-b")
    assert prompt.rstrip().endswith("tags, copied word for word.")
    a1, a2 = ctx.answers
    assert f"1: {a1}\n2: {a2}" in prompt
