from __future__ import annotations

import math

import pytest

from oversight.judge.parse import parse_choice, parse_verdict
from oversight.model.types import ChoiceLogprobs


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("Answer: 1", 1),
        ("answer:2", 2),
        ("**Answer: 2**", 2),
        ("**Answer**: 1", 1),
        ("Final answer: (2).", 2),
        ("Answer - 1", 1),
        ("Answer：2", 2),
        ("Answer: Answer 2", 2),
        ("Answer: 2 (the one that mentions 1 apple)", 2),
        ("Answer: 1, because the passage says so", 1),
        ("Answer: I pick 2", 2),
        ("Answer:\n2", 2),
        ("Answer:\n\n**1**", 1),
        # Chain of thought that mentions both answers before the final line.
        ("Answer 1 says X, answer 2 says Y.\nThe answer: 1 seemed right at first.\nAnswer: 2", 2),
        ("Considering answer 2... answer 1 is better.\nAnswer: 1", 1),
        ("Answer: 1. On reflection, Final Answer: 2", 2),
    ],
)
def test_valid_answers(text: str, answer: int) -> None:
    verdict = parse_verdict(text)
    assert (verdict.status, verdict.answer) == ("ok", answer)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "I think the first one.",
        "Answer 1 is convincing, answer 2 is not.",  # no marker line
        "Answer: 1 or 2",
        "Answer: 1 and 2",
        "Answer: 1/2",
        "Answer: both",
        "Answer: neither 1 nor 2",
        "Answer: neither",
        "Answer: 3",
        "Answer: 12",
        "Answer: 1.5",
        "Answer: 2\nAnswer: unsure",  # the last answer line decides
        "Answer:\nwell, it depends",
    ],
)
def test_invalid_answers(text: str) -> None:
    verdict = parse_verdict(text)
    assert (verdict.status, verdict.answer) == ("invalid", None)
    assert verdict.raw == text


@pytest.mark.parametrize(
    "text",
    [
        "I can't help with that.",
        "I cannot choose between these answers.",
        "I’m sorry, but I won’t judge this.",
        "As an AI, I do not take sides.",
        "I must decline to answer.",
    ],
)
def test_refusals(text: str) -> None:
    assert parse_verdict(text).status == "refused"


def test_an_answer_beats_refusal_words() -> None:
    assert parse_verdict("I cannot be certain, but\nAnswer: 2").answer == 2


def test_letter_labels_for_selectors() -> None:
    labels = ("a", "b", "c", "d")
    assert parse_choice("Answer: c", labels) == "c"
    assert parse_choice("Answer: (B)", labels) == "b"
    assert parse_choice("Answer: candidate d is best", labels) == "d"
    assert parse_choice("Answer: a or b", labels) is None
    assert parse_choice("Answer: e", labels) is None


def test_probabilities_are_renormalised() -> None:
    at = [ChoiceLogprobs(7, 9, {"1": math.log(0.6), "2": math.log(0.2)})]
    verdict = parse_verdict("Answer: 1", at)
    assert verdict.probs is not None
    assert verdict.probs[0] == pytest.approx(0.75) and verdict.probs[1] == pytest.approx(0.25)
    assert parse_verdict("Answer: 1", [ChoiceLogprobs(7, 9, {"1": 0.0})]).probs is None


def test_probabilities_come_from_the_token_of_the_parsed_answer() -> None:
    text = "Answer 1 is tempting, but 2 cites the article.\nAnswer: 2 (not 1)"
    at = [ChoiceLogprobs(7, 8, {"1": math.log(0.9), "2": math.log(0.1)}),  # the "1" in the reasoning
          ChoiceLogprobs(26, 27, {"1": math.log(0.5), "2": math.log(0.5)}),
          ChoiceLogprobs(54, 56, {"1": math.log(0.3), "2": math.log(0.7)}),  # " 2" after "Answer:"
          ChoiceLogprobs(62, 63, {"1": math.log(0.8), "2": math.log(0.2)})]
    assert text[54:56] == " 2"
    verdict = parse_verdict(text, at)
    assert verdict.answer == 2 and verdict.probs == pytest.approx((0.3, 0.7))
    # no log-probabilities at the answer's own token: none, rather than another token's
    assert parse_verdict(text, at[:2]).probs is None
