"""New judges against the source run's judges on the same transcripts (`oversight judge`).

A re-judged run's manifest names its source run (`rejudge_of`). For every protocol variant
both runs judged, each new (judge, mode) is paired with each of the source's on the items
both judged: per-item scores (orders and replicates averaged, as everywhere in scoring) and
the paired permutation test of `compare.py`. `diff = acc_new - acc_old`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from oversight.score.accuracy import item_scores
from oversight.score.compare import paired_permutation

JUDGE_COMPARISON_COLUMNS = [
    "protocol", "variant", "judge_new", "mode_new", "judge_old", "mode_old", "n_items", "acc_new", "acc_old",
    "diff", "ci_low", "ci_high", "p_value",
]  # fmt: skip
_BY = ["protocol", "variant", "judge", "judge_mode"]


def source_of(run_dir: Path) -> Path | None:
    """The source run a re-judged run links to, if it is there."""
    try:
        link = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8")).get("rejudge_of")
    except (OSError, ValueError):
        return None
    if not isinstance(link, dict) or not link.get("path"):
        return None
    p = Path(str(link["path"]))
    return p if (p / "judgments.parquet").exists() else None


def judge_comparison_table(new: pd.DataFrame, old: pd.DataFrame, n_resamples: int = 10_000,
                           seed: int = 0) -> pd.DataFrame:
    a = item_scores(new, by=_BY).fillna({"judge_mode": ""})
    b = item_scores(old, by=_BY).fillna({"judge_mode": ""})
    rows = []
    keys = ["task", "group", "item_id", "protocol", "variant"]
    for (proto, variant, jn, mn), x in a.groupby(_BY, sort=True):
        same = b[(b.protocol == proto) & (b.variant == variant)]
        for (jo, mo), y in same.groupby(["judge", "judge_mode"], sort=True):
            if (jn, mn) == (jo, mo):
                continue
            m = x.merge(y, on=keys, suffixes=("_new", "_old"))
            if m.empty:
                continue
            t = paired_permutation(m["score_new"].to_numpy(), m["score_old"].to_numpy(), n_resamples, seed)
            rows.append({"protocol": proto, "variant": variant, "judge_new": jn, "mode_new": mn or None,
                         "judge_old": jo, "mode_old": mo or None, "n_items": t["n_items"], "acc_new": t["acc_a"],
                         "acc_old": t["acc_b"], "diff": t["diff"], "ci_low": t["ci_low"], "ci_high": t["ci_high"],
                         "p_value": t["p_value"]})
    return pd.DataFrame(rows, columns=JUDGE_COMPARISON_COLUMNS)


def format_judge_comparison(table: pd.DataFrame, source: Path) -> str:
    lines = [f"New judges vs the source run's ({source}), same transcripts, paired permutation test:"]
    if table.empty:
        return lines[0] + "\n  no protocol was judged on common items by both."
    for r in table.itertuples():
        new = r.judge_new + (f" ({r.mode_new})" if r.mode_new else "")
        old = r.judge_old + (f" ({r.mode_old})" if r.mode_old else "")
        p = "—" if pd.isna(r.p_value) else f"{r.p_value:.3f}"
        lines.append(f"  {r.variant:<16} {new:<22} {r.acc_new:.2f} vs {old:<22} {r.acc_old:.2f}  "
                     f"diff {r.diff:+.2f}  p={p}  ({r.n_items} items)")
    return "\n".join(lines)
