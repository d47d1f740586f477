"""The transcript browser of `report.html`: its data (one JSON block) and its script.

One card per transcript (debate, consultancy; the open protocols' verdicts sit on the
transcript they reuse) and one per item for its QA verdicts. A card holds the item (task,
question, both answers, which is correct), who argued which side, the article, every
turn, each verdict with the raw reply, and the exact prompt each participant received.

The page stays responsive with tens of thousands of transcripts: the script renders only
the cards in view (30 at a time), and the data is compact. Prompts are stored once each as
lists of line numbers into one table of distinct lines, turns' text likewise (a turn is
quoted line for line in later prompts), and an article that appears in agents' prompts is
stored once and put back when a prompt is opened. `benchmarks/report_browser.py` measures
the page in headless Chromium.

Everything a model wrote is untrusted text: the JSON block has every `<` escaped, so no
text can close the script element, and the script escapes every string before it reaches
the page; only the harness's own passage tags become markup, after escaping. The filter
state lives in the URL fragment (`report.html#task=boolq&judge=…`), so a view can be
linked and tests can drive the page with `chromium --dump-dom`.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pandas as pd

from oversight.protocol import registry
from oversight.score.frame import judge_order, normalize_judgments, protocol_rank

_ARTICLE = re.compile(r"<article>\n(.*?)\n</article>", re.S)
ARTICLE_REF = "\x01A"  # a prompt line standing for article number N: "\x01A" + N
PAGE_SIZE = 30  # cards rendered at a time

JS = r"""
(function () {
  'use strict';
  var t0 = performance.now();
  var D = JSON.parse(document.getElementById('ov-data').textContent);
  var L = D.lines, ART = D.articles, IT = D.items, C = D.cards, P = D.prompts;
  var PAGE = D.page || 30;
  var DEFAULTS = {task: '', protocol: 'dc', judge: '', outcome: '', q: ''};
  var state = {task: '', protocol: 'dc', judge: '', outcome: '', q: ''};
  var limit = PAGE, matched = [], openPrivate = false;
  // verdict: 0 protocol, 1 judge, 2 order, 3 correct answer, 4 judge answer, 5 status,
  // 6 outcome, 7 P(correct), 8 raw reply, 9 error, 10 prompt number, 11 agent's own QA,
  // 12 agent choice, 13 assigned, 14 replicate, 15 variant
  // turn: 0 round, 1 speaker, 2 role, 3 side, 4 model, 5 visible (line numbers), 6 private, 7 verified,
  // 8 unverified, 9 truncated, 10 chosen, 11 candidate, 12 prompt number
  // item: 0 task, 1 id, 2 group, 3 question, 4 answer_0, 5 answer_1, 6 correct (0/1),
  // 7 article number, 8 article matches the item's sha256, 9 the source article's length
  function $(id) { return document.getElementById(id); }
  var ESC = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'};
  function esc(s) { return s == null ? '' : String(s).replace(/[&<>"']/g, function (c) { return ESC[c]; }); }
  function fmt(s) {
    if (s == null) return '';
    s = String(s);
    var out = '', pos = 0, m, re = /<(v|u)_passage>([\s\S]*?)<\/\1_passage>/g;
    while ((m = re.exec(s))) {
      var v = m[1] === 'v', label = v ? 'verified' : 'unverified';
      out += esc(s.slice(pos, m.index)) + '<mark class="' + (v ? 'vp' : 'up') + '" title="' + label +
        ' quote"><span class="tag">' + label + '</span>' + esc(m[2]) + '</mark>';
      pos = re.lastIndex;
    }
    return out + esc(s.slice(pos));
  }
  function vis(t) { return t[5] && t[5].map ? t[5].map(function (i) { return L[i]; }).join('\n') : t[5]; }
  function jl(v) { return v[1] + (v[11] ? ' (agent\u2019s own QA)' : ''); }
  function task(c) { var it = IT[c.i]; return it ? it[0] : ''; }
  function vMatch(v) {
    return (state.protocol === '' || state.protocol === 'dc' || v[0] === state.protocol) &&
      (!state.judge || jl(v) === state.judge) && (!state.outcome || v[6] === state.outcome);
  }
  function hay(c) {
    if (c._h === undefined) {
      var it = IT[c.i] || [], parts = [it[0], it[1], it[3], it[4], it[5], c.t, c.a, c.b, c.p];
      (c.turns || []).forEach(function (t) { parts.push(t[1], vis(t)); });
      c.v.forEach(function (v) { parts.push(v[0], v[1], v[8], v[9]); });
      c._h = parts.filter(function (x) { return x != null; }).join('\n').toLowerCase();
    }
    return c._h;
  }
  function cMatch(c) {
    if (state.protocol === 'dc' && c.k !== 't') return false;
    if (state.task && task(c) !== state.task) return false;
    if (c.v.length) { if (!c.v.some(vMatch)) return false; }
    else if (state.judge || state.outcome ||
             (state.protocol && state.protocol !== 'dc' && c.p !== state.protocol)) return false;
    if (state.q) {
      var h = hay(c), words = state.q.toLowerCase().split(/\s+/);
      for (var i = 0; i < words.length; i++) if (words[i] && h.indexOf(words[i]) < 0) return false;
    }
    return true;
  }
  function sides(c) {
    var s = {1: [], 2: []};
    (c.turns || []).forEach(function (t) {
      if ((t[3] === 1 || t[3] === 2) && !(t[2] && t[2].indexOf('judge') === 0)) {
        var who = t[1] + (t[4] ? ' (' + t[4] + ')' : '');
        if (s[t[3]].indexOf(who) < 0) s[t[3]].push(who);
      }
    });
    if (!s[1].length && !s[2].length && c.k === 't' && c.o != null) {
      var cpos = c.o === 1 ? 2 : 1;
      var a = c.a ? ' (' + c.a + ')' : '', b = c.b ? ' (' + c.b + ')' : a;
      if (c.b) { s[1].push('Alice' + a); s[2].push('Bob' + b); }
      else if (c.s) s[c.s === 'correct' ? cpos : 3 - cpos].push('Consultant' + a);
    }
    return s;
  }
  // A program (GSM8KQA, CodeQA) or any answer of several lines: a code block keeping its lines.
  function ans(t) {
    t = t == null ? '' : String(t);
    var s = t.replace(/^\n+|\n+$/g, '');
    return s.indexOf('\n') >= 0 ? '<code class="answer">' + esc(s) + '</code>' : esc(t);
  }
  function answers(c, it) {
    if (!it || it[3] == null) {
      return '<p class="note">The question and answers of this item were not recorded ' +
        '(a run sealed before items.parquet existed).</p>';
    }
    var texts = [it[4], it[5]], right = texts[it[6]], wrong = texts[1 - it[6]];
    var h = '<div class="q"><span class="lbl">Question</span>' + esc(it[3]) + '</div>';
    if (c.k === 'q' || c.o == null) {
      return h + '<ul class="answers"><li class="correct">' + ans(right) +
        ' <span class="badge ok">correct</span></li><li class="wrong">' + ans(wrong) +
        ' <span class="badge no">incorrect</span></li></ul>' + (c.k === 'q' ?
        '<p class="note">Each verdict says in which order its judge saw the answers (1 and 2).</p>' : '');
    }
    var listed = c.o === 1 ? [wrong, right] : [right, wrong], cpos = c.o === 1 ? 2 : 1, s = sides(c);
    h += '<ol class="answers">';
    for (var k = 1; k <= 2; k++) {
      h += '<li class="' + (k === cpos ? 'correct' : 'wrong') + '">' + ans(listed[k - 1]) +
        ' <span class="badge ' + (k === cpos ? 'ok' : 'no') + '">' + (k === cpos ? 'correct' : 'incorrect') +
        '</span>' +
        (s[k].length ? '<span class="argued">argued by ' + esc(s[k].join(', ')) + '</span>' : '') + '</li>';
    }
    return h + '</ol>';
  }
  function article(it) {
    if (!it || it[7] == null || it[7] < 0) return '';
    var note = it[8] ? '' : '<p class="note">As the agents\u2019 prompts show it; it differs from the source ' +
      'article (' + (it[9] == null ? '?' : it[9].toLocaleString()) + ' characters, a different sha256): the ' +
      'prompt templates normalise blank lines.</p>';
    return '<details class="article" data-a="' + it[7] + '"><summary>Article (' + ART[it[7]].length.toLocaleString() +
      ' characters; the agents read it; judges never do, except in QA with article)</summary>' + note +
      '<pre class="lazy"></pre></details>';
  }
  function promptBox(pid, label) {
    return '<details class="prompt" data-p="' + esc(pid) + '"><summary>' + esc(label) +
      '</summary><pre class="lazy"></pre></details>';
  }
  function turn(t) {
    var side = (t[3] === 1 || t[3] === 2) ? ' side-' + t[3] : '';
    var isJudge = t[2] && t[2].indexOf('judge') === 0;
    var bits = [];
    if (t[0] != null) bits.push('round ' + t[0]);
    bits.push('<b>' + esc(t[1]) + '</b>' + (t[4] ? ' (' + esc(t[4]) + ')' : ''));
    if (side && !isJudge) bits.push('argues answer ' + t[3]);
    if (isJudge) bits.push(esc(t[2].replace('_', ' ')));
    if (t[11] != null) bits.push('candidate ' + t[11]);
    if (t[7] || t[8]) bits.push('passages: ' + (t[7] || 0) + ' verified, ' + (t[8] || 0) + ' unverified');
    if (t[9]) bits.push('<i>truncated</i>');
    var h = '<div class="turn' + (isJudge ? ' judge' : side) + '"><div class="who">' + bits.join(' \u00b7 ') +
      '</div><div class="text">' + fmt(vis(t)) + '</div>';
    if (t[6]) {
      h += '<details class="private"' + (openPrivate ? ' open' : '') +
        '><summary>private thinking (shown to no one)</summary><pre>' + esc(t[6]) + '</pre></details>';
    }
    if (t[12] != null) h += promptBox(t[12], 'the prompt ' + t[1] + ' received');
    return h + '</div>';
  }
  function turns(c) {
    var ts = c.turns || [];
    if (!ts.length) {
      var failed = c.v.some(function (v) { return v[6] === 'error'; });
      return '<p class="note">No turns recorded' + (failed ? ' (the episode failed: see the error below).' : '.') +
        '</p>';
    }
    var others = {}, h = '';
    ts.forEach(function (t) { if (t[10] === 0) { var k = t[0] + '|' + t[1]; (others[k] = others[k] || []).push(t); } });
    ts.forEach(function (t) {
      if (t[10] === 0) return;
      h += turn(t);
      var o = others[t[0] + '|' + t[1]];
      if (o) {
        h += '<details class="cands"><summary>' + o.length + ' other best-of-N candidate(s) of this turn, ' +
          'not chosen</summary>' + o.map(turn).join('') + '</details>';
      }
    });
    return h;
  }
  function verdicts(c) {
    if (!c.v.length) return '<p class="note">No verdicts recorded.</p>';
    var qa = c.k === 'q';
    var h = '<div class="scroll"><table class="tbl verdicts"><thead><tr><th>protocol</th><th>judge</th>' +
      (qa ? '<th>answer order</th>' : '') + '<th>answer</th><th>outcome</th><th>P(correct)</th>' +
      '<th>reply (raw) \u00b7 prompt</th></tr></thead><tbody>';
    c.v.forEach(function (v) {
      var ans = v[4] == null ? '\u2014' : v[4] + (v[3] != null ? (v[4] === v[3] ? ' (correct)' : ' (incorrect)') : '');
      var notes = [];
      if (v[12] != null) notes.push('agent chose ' + v[12]);
      if (v[14] != null && D.replicates) notes.push('replicate ' + v[14]);
      var status = (v[5] !== 'ok' && v[5] !== 'error' && v[5] !== v[6]) ?
        ' <span class="note">(' + esc(v[5]) + ')</span>' : '';
      h += '<tr class="v ' + v[6] + (vMatch(v) ? '' : ' dim') + '"><td>' + esc(v[15] || v[0]) +
        (notes.length ? '<div class="note">' + esc(notes.join(' \u00b7 ')) + '</div>' : '') + '</td><td>' +
        esc(jl(v)) + '</td>' +
        (qa ? '<td>' + (v[2] == null ? '' : v[2] === 0 ? 'correct first' : 'correct second') + '</td>' : '') +
        '<td>' + esc(ans) + '</td><td class="outcome">' + esc(v[6]) + status + '</td><td>' +
        (v[7] == null ? '' : v[7].toFixed(2)) + '</td><td>' +
        (v[9] ? '<pre class="err">' + esc(v[9]) + '</pre>' : '') +
        (v[8] ? '<pre class="raw">' + esc(v[8]) + '</pre>' : '') +
        (v[10] != null ? promptBox(v[10], 'the prompt the ' + (v[11] ? 'agent' : 'judge') + ' received') : '') +
        '</td></tr>';
    });
    return h + '</tbody></table></div>';
  }
  function card(c) {
    var it = IT[c.i], head = [esc(it ? it[0] : '?'), 'item ' + esc(it ? it[1] : '?')];
    if (c.k === 'q') head.push('QA: ' + c.v.length + ' verdict' + (c.v.length === 1 ? '' : 's') + ' on this item');
    else {
      head.push('<b>' + esc(c.var || c.p) + '</b>');
      if (!c.b && c.s) head.push('consultant assigned the ' + esc(c.s) + ' answer');
      if (c.n != null) head.push(c.n + ' round' + (c.n === 1 ? '' : 's'));
      if (c.ts) head.push(esc(c.ts));
      if (c.bo > 1) head.push('best of ' + c.bo);
      if (c.r != null && D.replicates) head.push('replicate ' + c.r);
    }
    return '<section class="card" data-kind="' + c.k + '" data-task="' + esc(it ? it[0] : '') + '"><h3>' +
      head.join(' \u00b7 ') + '</h3>' + answers(c, it) + article(it) + (c.k === 't' ? turns(c) : '') + verdicts(c) +
      (c.t ? '<div class="note">transcript ' + esc(c.t) + '</div>' : '') + '</section>';
  }
  function promptText(ref) {
    var msgs = /^\d+$/.test(ref) ? P[+ref] : null;
    if (!msgs) return '<i>prompt ' + esc(ref) + ' is not in this run\u2019s prompts.parquet</i>';
    return msgs.map(function (m) {
      return '<b>[' + esc(m[0]) + ']</b>\n' + m[1].map(function (i) {
        var s = L[i];
        // exactly the text sent: passage tags stay tags, not badges
        return s.charCodeAt(0) === 1 ? '<span class="artref">' + esc(ART[+s.slice(2)]) + '</span>' : esc(s);
      }).join('\n');
    }).join('\n\n');
  }
  function render() {
    $('ov-list').innerHTML = matched.slice(0, limit).map(card).join('');
    var nv = 0;
    matched.forEach(function (c) { c.v.forEach(function (v) { if (vMatch(v)) nv++; }); });
    var cnt = $('f-count');
    cnt.setAttribute('data-count', String(matched.length));
    cnt.setAttribute('data-verdicts', String(nv));
    cnt.textContent = matched.length.toLocaleString() + ' of ' + C.length.toLocaleString() + ' cards match (' +
      nv.toLocaleString() + ' verdict' + (nv === 1 ? '' : 's') + ')' +
      (matched.length > limit ? '; showing the first ' + limit : '');
    $('ov-more').hidden = matched.length <= limit;
  }
  function apply() {
    var t = performance.now();
    matched = C.filter(cMatch);
    limit = PAGE;
    render();
    document.documentElement.setAttribute('data-filter-ms', (performance.now() - t).toFixed(1));
  }
  function readHash() {
    var h = location.hash.replace(/^#/, '');
    if (h.indexOf('=') < 0) return;
    h.split('&').forEach(function (kv) {
      var i = kv.indexOf('=');
      if (i < 0) return;
      var k = decodeURIComponent(kv.slice(0, i)), v = decodeURIComponent(kv.slice(i + 1).replace(/\+/g, ' '));
      if (Object.prototype.hasOwnProperty.call(state, k)) state[k] = v;
    });
  }
  function writeHash() {
    var parts = [];
    for (var k in state) if (state[k] !== DEFAULTS[k]) parts.push(k + '=' + encodeURIComponent(state[k]));
    var url = parts.length ? '#' + parts.join('&') : location.pathname + location.search;
    try { history.replaceState(null, '', url); } catch (e) { /* some browsers refuse it on file:// */ }
  }
  var controls = {task: 'f-task', protocol: 'f-protocol', judge: 'f-judge', outcome: 'f-outcome', q: 'f-q'};
  function sync() {
    for (var k in controls) { var el = $(controls[k]); el.value = state[k]; state[k] = el.value; }
  }
  var timer = null;
  Object.keys(controls).forEach(function (k) {
    var el = $(controls[k]);
    el.addEventListener(k === 'q' ? 'input' : 'change', function () {
      state[k] = el.value;
      clearTimeout(timer);
      timer = setTimeout(function () { apply(); writeHash(); }, k === 'q' ? 200 : 0);
    });
  });
  $('ov-more').addEventListener('click', function () { limit += PAGE; render(); });
  $('f-private').addEventListener('change', function () {
    openPrivate = this.checked;
    document.querySelectorAll('details.private').forEach(function (d) { d.open = openPrivate; });
  });
  document.addEventListener('toggle', function (e) {
    var d = e.target;
    if (!d || d.tagName !== 'DETAILS' || !d.open) return;
    var pre = d.querySelector(':scope > pre.lazy');
    if (!pre) return;
    pre.classList.remove('lazy');
    if (d.getAttribute('data-p') != null) pre.innerHTML = promptText(d.getAttribute('data-p'));
    else if (d.getAttribute('data-a') != null) pre.textContent = ART[+d.getAttribute('data-a')];
  }, true);
  window.addEventListener('hashchange', function () { readHash(); sync(); apply(); });
  readHash();
  sync();
  apply();
  var root = document.documentElement;
  root.setAttribute('data-browser-init-ms', (performance.now() - t0).toFixed(1));
  root.setAttribute('data-browser-ready-ms', performance.now().toFixed(1));
})();
"""


def esc(value: object) -> str:
    """HTML-escaped text of a cell value; nulls become an empty string."""
    if value is None:
        return ""
    try:
        if pd.isna(value):  # type: ignore[call-overload]
            return ""
    except (TypeError, ValueError):
        pass
    return html.escape(str(value), quote=True)


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts with nulls as None: much faster to render than iterrows."""
    if len(df) == 0:
        return []
    obj = df.astype(object)
    return obj.where(obj.notna(), None).to_dict("records")  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------
# The transcript browser's data


def _outcome(status: str, is_correct: object) -> str:
    if status == "ok":
        return "correct" if is_correct else "wrong"
    return "error" if status == "error" else "invalid"


def _int(v: Any) -> int | None:
    if v is None:
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _natural(s: object) -> tuple[object, ...]:
    return tuple(int(p) if p.isascii() and p.isdigit() else p for p in re.split(r"([0-9]+)", str(s)))


def _spread(keys: list[Any], limit: int, group: Callable[[Any], Any]) -> list[Any]:
    """At most `limit` keys, taken round-robin over groups (task × protocol) so a cap never
    hides a whole protocol; the result keeps the input order."""
    groups: dict[Any, list[Any]] = {}
    for k in keys:
        groups.setdefault(group(k), []).append(k)
    picked: set[Any] = set()
    queues = [iter(g) for g in groups.values()]
    while len(picked) < min(limit, len(keys)):
        for q in queues:
            nxt = next(q, None)
            if nxt is not None and len(picked) < limit:
                picked.add(nxt)
    return [k for k in keys if k in picked]


class _Prompts:
    """Stored prompts as line numbers into one table of distinct lines; articles once."""

    def __init__(self, prompts: pd.DataFrame) -> None:
        self.blobs: dict[str, str] = {}
        if len(prompts) and {"prompt_id", "messages"} <= set(prompts.columns):
            self.blobs = dict(zip(prompts["prompt_id"].astype(str), prompts["messages"].astype(str), strict=True))
        self.lines: list[str] = []
        self._line_ix: dict[str, int] = {}
        self.articles: list[str] = []
        self._article_ix: dict[str, int] = {}
        self.out: list[list[list[Any]]] = []  # prompt number -> [[role, [line numbers]], ...]
        self.number: dict[str, int] = {}  # prompt id -> prompt number
        self.article_of: dict[str, list[int]] = {}  # prompt id -> article numbers in it

    def line(self, s: str) -> int:
        ix = self._line_ix.get(s)
        if ix is None:
            ix = self._line_ix[s] = len(self.lines)
            self.lines.append(s)
        return ix

    def _article(self, text: str) -> int:
        ix = self._article_ix.get(text)
        if ix is None:
            ix = self._article_ix[text] = len(self.articles)
            self.articles.append(text)
        return ix

    def add(self, pid: str) -> None:
        if pid in self.number or pid not in self.blobs:
            return
        try:
            messages = json.loads(self.blobs[pid])
        except ValueError:
            return
        found: list[int] = []
        rendered = []
        for m in messages if isinstance(messages, list) else []:
            text_lines: list[int] = []
            for part in m.get("parts", []):
                if "text" in part:
                    text = str(part["text"])

                    def swap(mt: re.Match[str]) -> str:
                        ix = self._article(mt.group(1))
                        found.append(ix)
                        return f"<article>\n{ARTICLE_REF}{ix}\n</article>"

                    text = _ARTICLE.sub(swap, text)
                    text_lines += [self.line(s) for s in text.split("\n")]
                else:
                    sha = str(part.get("image_sha256", ""))
                    text_lines.append(self.line(f"[image {sha[:16]}…, {part.get('mime', 'image')}]"))
            rendered.append([str(m.get("role", "")), text_lines])
        self.number[pid] = len(self.out)
        self.out.append(rendered)
        self.article_of[pid] = found

    def ref(self, pid: Any) -> Any:
        """A prompt's number in the page, or its id when it is not stored (an old run)."""
        return None if not pid else self.number.get(str(pid), str(pid))


V_COLUMNS = ("protocol", "judge", "order", "correct_answer", "judge_answer", "verdict_status", "is_correct",
             "p_correct", "judge_raw", "error", "judge_prompt_id", "qa_role", "agent_choice", "assigned",
             "replicate", "variant", "run_id", "task", "item_id", "group", "agent", "agent_b", "transcript_id",
             "episode_id", "rounds", "turn_style", "best_of")
T_COLUMNS = ("run_id", "transcript_id", "turn", "round", "speaker", "role", "side", "agent", "visible", "private",
             "n_verified", "n_unverified", "truncated", "chosen", "candidate", "prompt_id")


def browser_data(judgments: pd.DataFrame, turns: pd.DataFrame | None, items: pd.DataFrame | None,
                 prompts: pd.DataFrame | None, limit: int | None = None,
                 judges: Sequence[str] = ()) -> dict[str, Any]:
    """The browser's JSON: cards (one per transcript; QA verdicts grouped per item), the
    items they are about, and the prompts each participant received. A card's verdicts
    are in protocol order, then judges in the spec's order, the agent's own QA last."""
    j = normalize_judgments(judgments) if len(judgments) else judgments
    for col in V_COLUMNS:
        if col not in j.columns:
            j = j.assign(**{col: None})
    rows = records(j[list(V_COLUMNS)])
    items = items if items is not None else pd.DataFrame()
    item_rec: dict[tuple[str, str, str], dict[str, Any]] = {}
    if len(items) and {"task", "item_id"} <= set(items.columns):
        for irec in records(items):
            item_rec.setdefault((str(irec.get("run_id") or ""), str(irec["task"]), str(irec["item_id"])), irec)

    cards: dict[tuple[str, ...], dict[str, Any]] = {}
    derived_names = registry.derived_protocols()
    for n, r in enumerate(rows):
        run, tsk, iid = str(r["run_id"] or ""), str(r["task"]), str(r["item_id"])
        protocol = str(r["protocol"])
        derived = protocol in derived_names
        qa = r["agent"] is None and not derived
        key = ("q", run, tsk, iid) if qa else ("t", run, str(r["transcript_id"] or r["episode_id"] or f"row{n}"))
        card = cards.get(key)
        if card is None:
            card = cards[key] = {"k": key[0], "_item": (run, tsk, iid), "_group": r["group"], "v": []}
            if not qa:
                card["t"] = key[2]
        if not qa and (not derived or "p" not in card):
            # the card's own protocol and settings come from its assigned (non-open) row
            card.update({k: v for k, v in (
                ("p", registry.source_of(protocol)), ("o", _int(r["order"])), ("a", r["agent"]), ("b", r["agent_b"]),
                ("s", r["assigned"]), ("r", _int(r["replicate"])), ("n", _int(r["rounds"])),
                ("ts", r["turn_style"]), ("bo", _int(r["best_of"])),
                ("var", r["variant"] if r["variant"] and r["variant"] != protocol else None)) if v is not None})
        elif qa:
            card.setdefault("p", protocol)
        p = r["p_correct"]
        card["v"].append([
            protocol, str(r["judge"] or ""), _int(r["order"]), _int(r["correct_answer"]), _int(r["judge_answer"]),
            str(r["verdict_status"]), _outcome(str(r["verdict_status"]), r["is_correct"]),
            None if p is None else round(float(p), 4), r["judge_raw"] or None, r["error"] or None,
            r["judge_prompt_id"], 1 if r["qa_role"] == "agent" else 0, _int(r["agent_choice"]), r["assigned"],
            _int(r["replicate"]), r["variant"] if r["variant"] and r["variant"] != protocol else None,
        ])

    rank = {name: i for i, name in enumerate(judges)}
    for card in cards.values():
        card["v"].sort(key=lambda v: (protocol_rank(v[0]), v[11], rank.get(v[1], len(rank)), v[1], v[2] or 0,
                                      v[14] or 0))
    keys = list(cards)
    total = len(keys)
    keys.sort(key=lambda k: (str(cards[k]["_item"][1]), _natural(cards[k]["_item"][2]), k[0] == "t",
                             protocol_rank(cards[k].get("p")), cards[k].get("o") or 0, str(cards[k].get("s")),
                             cards[k].get("r") or 0, k))
    if limit is not None:
        keys = _spread(keys, limit, lambda k: (cards[k]["_item"][1], cards[k].get("p")))

    if turns is not None and len(turns) and "transcript_id" in turns.columns:
        wanted = {(k[1], k[2]) for k in keys if k[0] == "t"}
        t = turns
        for col in T_COLUMNS:
            if col not in t.columns:
                t = t.assign(**{col: None})
        t = t[list(T_COLUMNS)]
        run_col = t["run_id"].astype(object).map(lambda v: "" if v is None or pd.isna(v) else str(v))
        t = t[[(a, str(b)) in wanted for a, b in zip(run_col, t["transcript_id"].astype(object), strict=True)]]
        if "turn" in t.columns:
            t = t.sort_values(["transcript_id", "turn"], kind="stable")
        for r in records(t):
            if str(r["role"] or "") == "judge":
                continue  # a judge's final answer: shown with its verdict
            card = cards.get(("t", str(r["run_id"] or ""), str(r["transcript_id"])))
            if card is None:
                continue
            chosen = r["chosen"]
            card.setdefault("turns", []).append([
                _int(r["round"]), r["speaker"], r["role"], _int(r["side"]), r["agent"], r["visible"],
                r["private"] or None, _int(r["n_verified"]) or 0, _int(r["n_unverified"]) or 0,
                1 if r["truncated"] else 0, None if chosen is None else (1 if chosen else 0), _int(r["candidate"]),
                r["prompt_id"],
            ])

    store = _Prompts(prompts if prompts is not None else pd.DataFrame())
    articles_of_item: dict[tuple[str, str, str], list[int]] = {}
    for k in keys:
        card = cards[k]
        pids = [v[10] for v in card["v"] if v[10]] + [t[12] for t in card.get("turns", []) if t[12]]
        for pid in pids:
            store.add(str(pid))
            if store.article_of.get(str(pid)):
                articles_of_item.setdefault(card["_item"], []).extend(store.article_of[str(pid)])
        for v in card["v"]:
            v[10] = store.ref(v[10])
        for t in card.get("turns", []):
            t[12] = store.ref(t[12])
            if isinstance(t[5], str):  # the text is in later prompts' lines already: refer to them
                t[5] = [store.line(x) for x in t[5].split("\n")]

    item_index: dict[tuple[str, str, str], int] = {}
    item_rows: list[list[Any]] = []
    out_cards = []
    for k in keys:
        card = cards[k]
        ikey = card["_item"]
        if ikey not in item_index:
            rec: dict[str, Any] | None = item_rec.get(ikey) or item_rec.get(("", ikey[1], ikey[2]))
            art, verified = -1, 0
            cands = list(dict.fromkeys(articles_of_item.get(ikey, [])))
            if cands:
                want = (rec or {}).get("article_sha256")
                match = [c for c in cands if want and hashlib.sha256(store.articles[c].encode()).hexdigest() == want]
                art, verified = (match[0], 1) if match else (cands[0], 0)
            if rec is None:
                item_rows.append([ikey[1], ikey[2], card["_group"], None, None, None, None, art, verified, None])
            else:
                item_rows.append([rec["task"], rec["item_id"], rec.get("group"), rec.get("question"),
                                  rec.get("answer_0"), rec.get("answer_1"), _int(rec.get("correct")), art, verified,
                                  _int(rec.get("article_chars"))])
            item_index[ikey] = len(item_rows) - 1
        card["i"] = item_index[ikey]
        out_cards.append({key: v for key, v in card.items() if not key.startswith("_")})
    replicates = bool(len(j) and "replicate" in j.columns and j["replicate"].dropna().nunique() > 1)
    return {"items": item_rows, "articles": store.articles, "lines": store.lines, "prompts": store.out,
            "cards": out_cards, "total": total, "replicates": replicates, "page": PAGE_SIZE}


def _json_script(data: dict[str, Any]) -> str:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    # No text can end the script element or open a comment: every "<" is escaped.
    text = text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return f'<script type="application/json" id="ov-data">{text}</script>'


def _select(name: str, label: str, options: Iterable[tuple[str, str]]) -> str:
    opts = "".join(f'<option value="{esc(v)}">{esc(t)}</option>' for v, t in options)
    return f'<label>{esc(label)} <select id="{name}">{opts}</select></label>'


def transcripts_html(judgments: pd.DataFrame, turns: pd.DataFrame | None, items: pd.DataFrame | None,
                     prompts: pd.DataFrame | None, judges: Sequence[str] = (), max_transcripts: int | None = None
                     ) -> str:
    """The browser: its filters, an empty list its script fills, the JSON data, the script."""
    data = browser_data(judgments, turns, items, prompts, limit=max_transcripts, judges=judges)
    cards = data["cards"]
    tasks = sorted({str(data["items"][c["i"]][0]) for c in cards})
    protocols = sorted({str(v[0]) for c in cards for v in c["v"]}, key=lambda p: (protocol_rank(p), p))
    labels = {str(v[1]) + (" (agent’s own QA)" if v[11] else "") for c in cards for v in c["v"]}
    plain = [x for x in judge_order(pd.DataFrame({"judge": sorted(labels)}), judges) if x in labels]
    filters = (
        '<div class="filters">'
        + _select("f-task", "task", [("", "all"), *[(t, t) for t in tasks]])
        + _select("f-protocol", "protocol", [("dc", "debates and consultancies"), ("", "all, QA included"),
                                             *[(p, p) for p in protocols]])
        + _select("f-judge", "judge", [("", "all"), *[(x, x) for x in plain]])
        + _select("f-outcome", "verdict", [("", "any"), ("correct", "correct"), ("wrong", "wrong"),
                                           ("invalid", "invalid or refused"), ("error", "error (failed)")])
        + '<label>search <input type="search" id="f-q" placeholder="question, answer, argument…"></label>'
        + '<label><input type="checkbox" id="f-private"> open private thinking</label>'
        + '<span id="f-count" class="note" data-count=""></span></div>'
    )
    cap = ""
    if max_transcripts is not None and data["total"] > len(cards):
        cap = (f'<p class="note">Capped with --max-transcripts: {len(cards):,} of {data["total"]:,} cards, spread '
               "over every task and protocol.</p>")
    intro = ('<p class="note">One card per transcript (debate, consultancy; open protocols’ verdicts sit on the '
             "transcript they reuse) and one per item for QA verdicts. Each card shows the question, both answers "
             "(which is correct, who argued which), the article on demand, every turn with quoted passages marked "
             "verified or unverified, each verdict with the judge’s raw reply, and the exact prompt every "
             "participant received. Filters and search apply to cards; the view is kept in the address "
             "(#task=…&amp;judge=…), so it can be linked.</p>")
    return ('<h2 id="transcripts">Transcripts</h2>' + intro + cap + filters
            + '<div id="ov-list"></div><button id="ov-more" hidden>show more</button>' + _json_script(data)
            + f"<script>{JS}</script>")
