"""Transcripts (what was said) and verdicts (what the judge decided)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

VerdictStatus = Literal["ok", "invalid", "refused", "error"]
VerdictRule = Literal["strict", "lenient", "constrained", "none"]

# Who speaks in a transcript.
ALICE, BOB, CONSULTANT, JUDGE = "Alice", "Bob", "Consultant", "Judge"


@dataclass
class Turn:
    round: int  # 1-based; 0 for judge-only protocols
    speaker: str  # "Alice", "Bob", "Consultant", "Judge"
    role: str  # "debater", "consultant", "judge_question", "judge", ...
    side: int | None  # the answer position (1 or 2) the speaker argues, if any
    visible: str  # what later participants see (passages already re-tagged)
    private: str = ""  # thinking: never shown to anyone, its author included
    candidate: int | None = None  # best-of-N: which sample this is (0-based)
    chosen: bool = True  # best-of-N: whether this candidate entered the transcript
    selection_invalid: bool = False  # best-of-N: no candidate named; the first was used
    n_verified: int = 0
    n_unverified: int = 0
    truncated: bool = False
    # Agent turns (oversight/protocol/agent.py): the reply had its Argument: header; why it
    # ended (stop | max_tokens | word_limit); words copied from the article outside passages.
    format_ok: bool | None = None
    finish_reason: str | None = None
    copied_words: int | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    prompt_id: str = ""  # the prompt that produced this turn (prompts.parquet)


@dataclass
class Transcript:
    transcript_id: str
    turns: list[Turn] = field(default_factory=list)

    def visible_turns(self) -> list[Turn]:
        return [t for t in self.turns if t.chosen]


@dataclass
class Verdict:
    answer: int | None  # 1, 2, or None when not ok
    raw: str
    status: VerdictStatus
    probs: tuple[float, float] | None = None  # P(answer 1), P(answer 2) where logprobs exist
    error: str | None = None
    # Which rule read the answer (oversight/judge/parse.py): strict | lenient | constrained | none.
    rule: VerdictRule = "none"
