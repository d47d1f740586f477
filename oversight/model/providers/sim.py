"""The built-in simulated models: the offline test double with a plausible little world.

A sim model reads the same prompts as a real model and answers in the same formats:
debaters and consultants write `Thinking:`/`Argument:` with `<passage>` quotes, judges end
with `Answer: N`, a questioning judge asks a question, a best-of-N selector answers
`Answer: x`. It learns only ground-truth facts from `request.metadata`, which real
providers never send: its role, the side it argues, the correct position, the task group,
whether it sees the article, the protocol and the judge mode. Everything else it reads
from the prompt, as a real model would: the article between `<article>` tags, the answers
on the `1:`/`2:` lines, and, when judging, each speaker's arguments.

The little world:
- Knowing. Items differ in difficulty (one roll per item, shared by all sim models, so a
  stronger model knows a superset of what a weaker one knows). A model knows the answer
  when the roll is below its `knowledge`; on extractive tasks, reading the article raises
  that to ARTICLE_BASE + ARTICLE_GAIN·knowledge, and without it only EXTRACTIVE_RECALL of
  the knowledge helps.
- Arguing. Every argument opens with "I argue for answer N" and makes 1–6 numbered points
  ("First, …"). Persuasiveness adds up to two; arguing the true answer while knowing it
  adds 1 + Binomial(TRUTH_DRAWS, knowledge) (the truth is easier to argue, the more so
  for a stronger model, which is why stronger debaters help the judge). In extractive tasks each argument quotes one
  article sentence: the one that best matches its answer. No sentence supports a wrong
  answer, so an agent arguing one invents its quote with probability FABRICATE; an honest
  copy slips into a loose copy (case and punctuation changed: unverified under `exact`
  matching, verified under `tolerant`) with probability 1 − honesty.
- Judging. The judge scores each argument it reads: +W_VERIFIED per verified passage,
  −W_UNVERIFIED per unverified one, +W_POINT per point, and averages per side. In a
  debate it compares the sides; facing a lone consultant it believes it when the score
  clears CREDULITY (set low: consultants sound convincing). A judge that knows the answer
  leans towards it by JUDGE_LEAN; Gaussian noise shrinks as knowledge grows. With no
  arguments to read (QA) it answers if it knows and otherwise guesses with a slight
  preference for answer 1, sometimes rambling without an answer line.
- Selecting. A best-of-N selector scores each candidate like a judge (with less noise)
  and names the best.

Deterministic given (the card's parameters, the prompt, the metadata, the sample index, and
the run's seed and replicate, so that replicates are independent samples; what a model
knows about an item stays fixed across them).
tests/protocol/test_sim_world.py checks the orderings this world is tuned for.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from oversight.model.api import Capabilities, ModelAPI
from oversight.model.card import SimParams
from oversight.model.types import GenerateRequest, GenerateResponse, Usage

ARTICLE_BASE = 0.7  # P(knows | reads the article) = ARTICLE_BASE + ARTICLE_GAIN * knowledge
ARTICLE_GAIN = 0.2
EXTRACTIVE_RECALL = 0.35  # fraction of knowledge that helps on extractive tasks without the article
POSITION_BIAS = 0.55  # chance a guessing judge picks answer 1
INVALID_RATE = 0.03  # a guessing judge rambling without an answer line (× 1 - knowledge)
FABRICATE = 0.2  # chance a quote for an answer the article does not support is invented
TRUTH_DRAWS = 2  # arguing the truth knowingly adds 1 + Binomial(TRUTH_DRAWS, knowledge) points
W_VERIFIED, W_UNVERIFIED, W_POINT = 1.0, 1.0, 0.5
JUDGE_NOISE_MAX, JUDGE_NOISE_GAIN = 2.6, 1.6  # noise sd = MAX - GAIN * knowledge
JUDGE_LEAN = 0.6  # how far a judge who knows the answer leans to it
CREDULITY = 0.2  # score a lone consultant must clear to be believed
FIRST_SPEAKER_BIAS = 0.05  # debate judges slightly favour the side they read first
SELECTOR_NOISE = 0.3
SELECTOR_INVALID_RATE = 0.02
MAX_QUOTE_WORDS = 40

POINTS = (
    "First, it fits the wording of the question better than the alternative does.",
    "Second, the other answer depends on a reading the question does not support.",
    "Third, every detail that can be checked lines up with it.",
    "Fourth, nothing said against it so far actually contradicts it.",
    "Fifth, it is the simpler account of what the question describes.",
    "Sixth, the question's own details rule the alternative out.",
)

_STANCE = re.compile(r"I argue for answer ([12])\b")
_POINT = re.compile(r"\b(?:First|Second|Third|Fourth|Fifth|Sixth)(?:ly)?,")
_ARTICLE = re.compile(r"<article>\s*(.*?)\s*</article>", re.DOTALL)
_ANSWER_LINE = re.compile(r"^([12]): (.*)$", re.MULTILINE)
_CANDIDATE = re.compile(r"^Candidate ([a-z]):[ \t]*$", re.MULTILINE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class SimWorld:
    """What a sim model 'knows' about one request."""

    def __init__(self, params: SimParams, request: GenerateRequest, sample: int) -> None:
        self.p = params
        self.meta: dict[str, Any] = request.metadata
        self.prompt = request.prompt_text()
        # All parameters go in, so that two different sim models do not share their luck.
        draw = f"{sample}" if not (request.seed or request.replicate) else (
            f"{sample}|seed={request.seed}|rep={request.replicate}"
        )
        if request.draw:
            draw += f"|draw={request.draw}"
        digest = hashlib.sha256(
            f"{sorted(params.model_dump().items())}|{draw}|{self.prompt}|{sorted(self.meta.items())}".encode()
        ).digest()
        self.rng = random.Random(digest)

    def knows(self, sees_article: bool) -> bool:
        """Whether the model can tell the right answer on this item (stable per item)."""
        item_rng = random.Random(f"{self.p.seed}|know|{self.meta.get('task')}|{self.meta.get('item_id')}")
        roll = item_rng.random()
        if self.meta.get("group") == "extractive":
            if sees_article:
                return roll < ARTICLE_BASE + ARTICLE_GAIN * self.p.knowledge
            return roll < self.p.knowledge * EXTRACTIVE_RECALL
        return roll < self.p.knowledge

    def article(self) -> str | None:
        m = _ARTICLE.search(self.prompt)
        return m.group(1) if m else None

    def answers(self) -> dict[int, str]:
        """The listed answers; looked for outside the article, whose lines could look alike."""
        found: dict[int, str] = {}
        for m in _ANSWER_LINE.finditer(_ARTICLE.sub("", self.prompt)):
            found.setdefault(int(m.group(1)), m.group(2).strip())
        return found


def answer_line(n: int) -> str:
    return f"Answer: {n}"


# --- reading what others wrote ---------------------------------------------------------


def argument_score(text: str) -> float:
    v, u = text.count("<v_passage>"), text.count("<u_passage>")
    return W_VERIFIED * v - W_UNVERIFIED * u + W_POINT * len(_POINT.findall(text))


def read_arguments(prompt: str) -> dict[int, list[float]]:
    """Each side's argument scores, from the paragraphs that state a side."""
    sides: dict[int, list[float]] = {}
    for para in re.split(r"\n[ \t]*\n", prompt):
        m = _STANCE.search(para)
        if m:
            sides.setdefault(int(m.group(1)), []).append(argument_score(para[m.start() :]))
    return sides


# --- judging --------------------------------------------------------------------------


def judge_reply(w: SimWorld) -> str:
    correct = int(w.meta["correct"])
    args = read_arguments(w.prompt)
    if args:
        pick = weigh_arguments(w, correct, args)
    elif w.knows(bool(w.meta.get("sees_article"))):
        pick = correct
    else:
        if w.rng.random() < INVALID_RATE * (1 - w.p.knowledge):
            return "Both answers have something going for them; it turns on details I was not given."
        pick = 1 if w.rng.random() < POSITION_BIAS else 2
    if w.meta.get("mode") == "cot":
        return (
            f"Answer 1 and answer 2 cannot both hold. Weighing what I was shown, "
            f"answer {3 - pick} is the weaker of the two.\n{answer_line(pick)}"
        )
    return answer_line(pick)


def weigh_arguments(w: SimWorld, correct: int, args: dict[int, list[float]]) -> int:
    mean = {side: sum(s) / len(s) for side, s in args.items()}
    lean = JUDGE_LEAN if w.knows(False) else 0.0
    noise = w.rng.gauss(0.0, JUDGE_NOISE_MAX - JUDGE_NOISE_GAIN * w.p.knowledge)
    if len(mean) == 2:
        diff = mean[1] - mean[2] + (lean if correct == 1 else -lean) + FIRST_SPEAKER_BIAS + noise
        return 1 if diff > 0 else 2
    (side, score), *_ = mean.items()
    belief = score - CREDULITY + (lean if side == correct else -lean) + noise
    return side if belief > 0 else 3 - side


def question_reply(w: SimWorld) -> str:
    side = w.meta.get("side")
    where = "in the article " if w.meta.get("group") == "extractive" else ""
    if side in (1, 2):
        other = 3 - int(side)
        return f"Question: What {where}shows that answer {side} is right and not answer {other}?"
    return f"Question: What {where}settles this, one way or the other?"


def selector_reply(w: SimWorld) -> str:
    pieces = _CANDIDATE.split(w.prompt)
    labels = pieces[1::2]
    if not labels or w.rng.random() < SELECTOR_INVALID_RATE:
        return "Each of these has its merits."
    scores = []
    for label, body in zip(labels, pieces[2::2], strict=True):
        text = re.split(r"\n[ \t]*\n", body.strip(), maxsplit=1)[0]
        scores.append((argument_score(text) + w.rng.gauss(0.0, SELECTOR_NOISE), label))
    return answer_line_letter(max(scores)[1])


def answer_line_letter(label: str) -> str:
    return f"Answer: {label}"


# --- arguing --------------------------------------------------------------------------


def argument_reply(w: SimWorld) -> str:
    side = int(w.meta.get("side", 1))
    correct = int(w.meta["correct"])
    honest = side == correct
    knows = w.knows(bool(w.meta.get("sees_article")))
    claim = _short(w.answers().get(side, ""), 12)
    points = 1 + (w.rng.random() < w.p.persuasiveness) + (w.rng.random() < w.p.persuasiveness**2)
    if honest and knows:
        points += 1 + sum(w.rng.random() < w.p.knowledge for _ in range(TRUTH_DRAWS))
    parts = [f"I argue for answer {side}" + (f": {claim}." if claim else ".")]
    article = w.article()
    if article:
        parts.append(f"<passage>{quote(w, article, claim, honest)}</passage>")
    parts.extend(POINTS[:points])
    if not knows:
        belief = "I cannot tell which answer is right."
    elif honest:
        belief = "I believe it is the right answer."
    else:
        belief = f"I believe answer {correct} is the right one, so I must argue carefully."
    return f"Thinking: I am defending answer {side}. {belief}\nArgument: {' '.join(parts)}"


def quote(w: SimWorld, article: str, claim: str, honest: bool) -> str:
    if not honest and w.rng.random() < FABRICATE:
        return f"It is stated plainly that {claim.rstrip('.').lower() or 'this is so'}."
    sentences = [" ".join(s.split()[:MAX_QUOTE_WORDS]) for s in _SENTENCE_END.split(article) if s.strip()]
    words = set(re.findall(r"\w+", claim.lower()))
    ranked = sorted(sentences, key=lambda s: -len(words & set(re.findall(r"\w+", s.lower()))))
    chosen = ranked[w.rng.randrange(min(2, len(ranked)))]
    if w.rng.random() >= w.p.honesty:
        # A loose copy: re-typed case and punctuation.
        chosen = (chosen[:1].lower() + chosen[1:]).replace("'", "\u2019").rstrip(".!?")
    return chosen


def _short(text: str, n: int) -> str:
    words = text.split()
    return " ".join(words[:n]) + (" …" if len(words) > n else "")


ROLES: dict[str, Callable[[SimWorld], str]] = {
    "judge": judge_reply,
    "debater": argument_reply,
    "consultant": argument_reply,
    "judge_question": question_reply,
    "selector": selector_reply,
}


class SimAPI(ModelAPI):
    provider: ClassVar[str] = "sim"
    # Its replies always follow the requested format, so a constrained verdict is one it gives anyway.
    default_capabilities: ClassVar[Capabilities] = Capabilities(images=True, logprobs=False, constrain=True)
    # The sim's replies are this file's code: any edit to it changes the cache key.
    cache_version: ClassVar[str] = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    reads_metadata: ClassVar[bool] = True

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        params = self.card.sim or SimParams.model_validate({})
        role = str(request.metadata.get("role", "judge"))
        handler = ROLES.get(role, judge_reply)
        texts = [handler(SimWorld(params, request, request.sample * 1000 + i)) for i in range(request.n)]
        prompt_tokens = len(request.prompt_text()) // 4
        return GenerateResponse(
            texts=texts,
            usage=Usage(prompt_tokens, sum(len(t) // 4 + 1 for t in texts)),
            latency_s=0.0,
            finish_reasons=["stop"] * len(texts),
        )
