"""Prompts are laid out for the providers' prompt caches: the stable part first, the
transcript last, and only what changes from call to call after it.

Real runs through the engine with the built-in sim models (every protocol, best-of-N with
its selector, consultancy and interactive-debate judge questions, sequential turns, the
agent's own QA, and the judge in every mode), then every prompt as stored in
prompts.parquet is checked, for every role:

(i) the article (for a role that reads it), the question and both answers stand before the
    transcript;
(ii) nothing that varies per call precedes the transcript: consecutive calls of one role in
    one episode share a prefix that holds the article, question and answers and reaches at
    least the start of the transcript (and into it, once it has turns);
and no role is shown an article it must not read.

This is the reference experiment's order (docs/METHOD.md) for every prompt (role and rules, question and answers, the
stance, the article, then the transcript, the output form and the round's steps): all that
is stable already precedes the transcript. Putting the article first instead, so that
Alice's, Bob's and the consultant's prompts of an item share it as one cached prefix, was
measured with `oversight run runs/kenton2024.yaml --dry-run` at $546.33 against $554.62
(1.5% less) and not adopted: it would depart from the reference experiment's prompt order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import pandas as pd
import pytest

import oversight
from oversight.dialogue.prompts import Templates
from oversight.model.prompt_cache import common_prefix_len
from oversight.task.item import Item

TASKS = ["quality", "boolq", "prontoqa"]  # a long article, a short one, a closed task
MODES = ("answer", "cot", "fewshot")
# Roles that read the article on extractive tasks (besides the QA-with-article judges).
READS_ARTICLE = ("debater", "consultant")


def spec(mode: str) -> dict[str, Any]:
    return {
        "name": f"layout_{mode}", "tasks": TASKS, "limit": 2, "agent": "sim/strong", "judges": ["sim/weak"],
        "protocols": ["qa", "qa_with_article", "consultancy", "debate", "open_consultancy", "open_debate"],
        "debate": {"rounds": 3, "best_of": 2, "interactive": mode == "answer",
                   "turns": "sequential" if mode == "cot" else "simultaneous"},
        "consultancy": {"rounds": 3},
        "judge": {"mode": mode, "shots": 2},
    }  # fmt: skip


@dataclass(frozen=True)
class Sent:
    """One call's prompt (prompts.parquet) and what it was about."""

    key: str  # transcript (or episode, for QA) the call belongs to
    role: str
    speaker: str
    model: str
    item: Item
    order: int
    protocol: str
    qa_role: str | None
    text: str


@dataclass(frozen=True)
class Played:
    mode: str
    sent: list[Sent]


@pytest.fixture(scope="module", params=MODES)
def played(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Played:
    mode = request.param
    root = tmp_path_factory.mktemp(f"layout_{mode}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OVERSIGHT_CACHE_DIR", str(root / "cache"))  # never the user's cache
        res = oversight.load(oversight.run(spec(mode), out=root / "run").run_dir)
    return Played(mode, list(_calls(res)))


@pytest.fixture
def sent(played: Played) -> list[Sent]:
    return played.sent


def _calls(res: oversight.Results) -> Iterator[Sent]:
    j = res.judgments
    about: dict[str, pd.Series] = {}
    for _, row in j[~j.protocol.str.startswith("open_")].iterrows():  # derived rows reuse others' calls
        for k in (row["episode_id"], row["transcript_id"]):
            if isinstance(k, str):
                about.setdefault(k, row)
    texts = {pid: _user_text(blob) for pid, blob in zip(res.prompts.prompt_id, res.prompts.messages, strict=True)}
    calls = res.calls[res.calls.error.isna()]
    assert len(calls) == len(res.calls) and len(calls) > 0
    for _, c in calls.iterrows():
        key = c["transcript_id"] if isinstance(c["transcript_id"], str) else c["episode_id"]
        row = about[key]
        qa_role = row["qa_role"] if isinstance(row["qa_role"], str) else None
        yield Sent(
            key,
            str(c["role"]),
            str(c["speaker"]),
            str(c["model"]),
            _item(row["task"], row["item_id"]),
            int(row["order"]),
            str(row["protocol"]),
            qa_role,
            texts[c["prompt_id"]],
        )


def _user_text(blob: str) -> str:
    """The prompt as the provider's cache sees it: the text of the (one) user message, as
    stored in prompts.parquet (`Results.prompt` would add a role header)."""
    [message] = json.loads(blob)
    assert message["role"] == "user"
    return "".join(part["text"] for part in message["parts"] if "text" in part)


@cache
def _item(task: str, item_id: str) -> Item:
    return next(i for i in oversight.load_items(task) if i.item_id == item_id)


# --- where things stand in a prompt ----------------------------------------------------

_BLANK_RUNS = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")  # collapsed by the renderer, in values too


def shown(text: str) -> str:
    return _BLANK_RUNS.sub("\n\n", text)


def _transcript_start_re() -> re.Pattern[str]:
    """The first line of a rendered transcript: the empty marker or a turn's header, both
    from the templates themselves."""
    t = Templates()
    empty = re.escape(t.render("transcript_empty").strip())
    header = re.escape(t.render("transcript_turn", speaker="SPEAKER", round="9999", text="").strip())
    header = header.replace("SPEAKER", "(?:Alice|Bob|Consultant|Judge)").replace("9999", r"\d+")
    return re.compile(rf"^(?:{empty}|{header})$", re.MULTILINE)


TRANSCRIPT_START = _transcript_start_re()


def transcript_start(text: str) -> int | None:
    m = TRANSCRIPT_START.search(text)
    return m.start() if m else None


def sees_article(s: Sent) -> bool:
    if not (s.item.group == "extractive" and s.item.article):
        return False
    return s.role in READS_ARTICLE or (s.role == "judge" and s.protocol == "qa_with_article")


def stable_parts(s: Sent) -> dict[str, str]:
    """What is the same on every call of a role about one item in one answer order."""
    a1, a2 = s.item.shown(s.order)
    parts = {"question": shown(s.item.question), "answer 1": shown(f"1: {a1}"), "answer 2": shown(f"2: {a2}")}
    if sees_article(s):
        parts["article"] = shown(s.item.article or "")
    return parts


def ends(s: Sent) -> dict[str, int]:
    """Where each stable part ends in the prompt (each must be there)."""
    out = {}
    for name, part in stable_parts(s).items():
        at = s.text.find(part)
        assert at >= 0, f"{s.role} prompt lacks its {name}:\n{s.text[:3000]}"
        out[name] = at + len(part)
    return out


# --- the checks ------------------------------------------------------------------------


def test_every_role_was_exercised(played: Played) -> None:
    sent = played.sent
    roles = {(s.role, s.protocol) for s in sent}
    wanted = {("debater", "debate"), ("selector", "debate"), ("consultant", "consultancy"),
              ("judge_question", "consultancy"), ("judge", "debate"), ("judge", "consultancy"), ("judge", "qa"),
              ("judge", "qa_with_article")}  # fmt: skip
    if played.mode == "answer":
        wanted.add(("judge_question", "debate"))  # the interactive debate
    assert wanted <= roles, wanted - roles
    assert any(s.qa_role == "agent" for s in sent)  # the agent's own QA
    assert any(s.item.group == "extractive" and s.item.article and len(s.item.article) > 10_000 for s in sent)


def test_stable_parts_come_before_the_transcript(sent: list[Sent]) -> None:
    """(i) for every role with a transcript; the article where the role reads it."""
    checked = set()
    for s in sent:
        start = transcript_start(s.text)
        if start is None:
            assert s.role == "judge" and s.protocol.startswith("qa"), f"no transcript in a {s.role} prompt"
            continue
        for name, end in ends(s).items():
            assert end <= start, f"{s.role} ({s.protocol}): the {name} comes after the transcript starts"
        checked.add(s.role)
    assert checked >= {"debater", "consultant", "selector", "judge_question", "judge"}


def _runs(sent: list[Sent]) -> dict[tuple[str, ...], list[Sent]]:
    """Each role's calls in one episode (one transcript), per speaker and model, in call order."""
    runs: dict[tuple[str, ...], list[Sent]] = {}
    for s in sent:
        runs.setdefault((s.key, s.role, s.speaker, s.model), []).append(s)
    return runs


def test_consecutive_calls_share_everything_up_to_the_transcript(sent: list[Sent]) -> None:
    """(ii) nothing round-specific precedes the transcript."""
    pairs: dict[str, int] = {}
    for (_, role, speaker, _), calls in _runs(sent).items():
        distinct = [s for i, s in enumerate(calls) if i == 0 or s.text != calls[i - 1].text]  # best-of-N repeats
        for before, after in zip(distinct, distinct[1:], strict=False):
            start = transcript_start(before.text)
            assert start is not None, f"{role} prompt without a transcript"
            shared = common_prefix_len(before.text, after.text)
            assert shared >= start, (
                f"{role} ({speaker}): consecutive prompts part before the transcript:\n"
                f"...{before.text[max(0, shared - 300) : shared]}<<<HERE>>>{before.text[shared : shared + 300]}..."
            )
            assert all(end <= shared for end in ends(before).values())
            if not before.text[start:].startswith(Templates().render("transcript_empty").strip()):
                # The transcript so far is itself part of what the next call repeats.
                first_line = before.text[start : before.text.index("\n", start)]
                assert shared > start + len(first_line), f"{role} ({speaker}): the transcript is not shared"
            pairs[role] = pairs.get(role, 0) + 1
    for role in ("debater", "consultant", "selector", "judge_question"):
        assert pairs.get(role, 0) > 0, f"no consecutive {role} calls were checked"


def test_roles_that_do_not_read_the_article_never_get_it(sent: list[Sent]) -> None:
    for s in sent:
        if s.item.article and not sees_article(s) and len(s.item.article) > 200:
            assert shown(s.item.article) not in s.text, f"{s.role} ({s.protocol}) was shown the article"
