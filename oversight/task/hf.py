"""Task data from a Hugging Face dataset: `hf:` in a task card instead of `path:`.

    hf: {path: google/boolq, split: validation, revision: <commit or tag>}
    hf: {path: data/my_boolq}          # a folder written by Dataset.save_to_disk

`path` is a Hub id, read with `datasets.load_dataset(path, name, split=..., revision=...)`,
or a local folder written by `save_to_disk`, read with `datasets.load_from_disk` (a
relative folder is looked for beside the card, then in the working directory). The chosen
split is written once to a Parquet file in the oversight cache (`$OVERSIGHT_CACHE_DIR` or
the user cache directory, under `hf-datasets/`), named by the dataset's fingerprint, and
the card's loader reads that file as it reads the Hugging Face Parquet files: so only the
loaders that read that shape accept `hf:` (HF_LOADERS). The file's hash is part of a run's
identity like any task file's; pin `revision` for a run that others can repeat.
Needs the `datasets` package: `pip install 'oversight[hf]'`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from pydantic import Field

from oversight.config import Strict
from oversight.errors import OversightError, clip
from oversight.model.cache import default_cache_dir

# Loaders that read the Hugging Face Parquet shape of their dataset.
HF_LOADERS = ("boolq", "generic", "gpqa", "gpqa_extractive", "mmlu", "mmmu")


class HFSource(Strict):
    path: str = Field(min_length=1)  # a Hub id (google/boolq) or a folder written by save_to_disk
    split: str | None = None  # needed when the dataset has more than one split
    name: str | None = None  # the dataset's configuration (load_dataset's `name`)
    revision: str | None = None  # a Hub commit, branch or tag


def cache_folder() -> Path:
    env = os.environ.get("OVERSIGHT_CACHE_DIR")
    # Beside the response cache (whose default folder is .../oversight/calls).
    return (Path(env).expanduser() if env else default_cache_dir().parent) / "hf-datasets"


def _local_folder(src: HFSource, card_path: str | None) -> Path | None:
    p = Path(src.path).expanduser()
    for cand in ([Path(card_path).parent / p] if card_path and not p.is_absolute() else []) + [p]:
        if cand.is_dir():
            return cand
    return None


def _load(src: HFSource, card_path: str | None, where: str) -> Any:
    try:
        import datasets
    except ImportError:
        raise OversightError(
            f"{where}: 'hf:' reads a Hugging Face dataset, which needs the datasets package; install it "
            f"with `pip install 'oversight[hf]'`, or point 'path:' at a local file instead."
        ) from None
    folder = _local_folder(src, card_path)
    try:
        if folder is not None:
            ds = datasets.load_from_disk(str(folder))
        else:
            ds = datasets.load_dataset(src.path, src.name, split=src.split, revision=src.revision)
    except (OSError, ValueError, FileNotFoundError) as exc:
        raise OversightError(
            f"{where}: cannot load the Hugging Face dataset '{clip(src.path)}' ({type(exc).__name__}: "
            f"{clip(str(exc), 200)}). Check hf.path (a Hub id, or a folder written by save_to_disk), hf.name "
            f"and hf.revision, and that the Hub is reachable or the dataset is in the Hugging Face cache."
        ) from None
    if isinstance(ds, datasets.DatasetDict):
        splits = sorted(ds)
        if src.split is None and len(splits) == 1:
            return ds[splits[0]]
        if src.split not in ds:
            raise OversightError(
                f"{where}: the dataset '{clip(src.path)}' has the splits {', '.join(splits)}; "
                f"set hf.split to one of them{'' if src.split is None else f' (not {src.split!r})'}."
            )
        return ds[src.split]
    if not isinstance(ds, datasets.Dataset):
        raise OversightError(f"{where}: '{clip(src.path)}' loaded as {type(ds).__name__}, not a Dataset.")
    return ds


def materialize(src: HFSource, card_path: str | None, where: str) -> Path:
    """The dataset split as a Parquet file in the cache (written once per fingerprint)."""
    ds = _load(src, card_path, where)
    identity = json.dumps([src.model_dump(), ds._fingerprint, ds.num_rows], sort_keys=True)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:20]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(src.path).name or "dataset")[:60]
    out = cache_folder() / f"{slug}-{src.split or 'all'}-{digest}.parquet"
    if not out.exists():
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(f".{os.getpid()}.tmp")
            ds.to_parquet(str(tmp))
            os.replace(tmp, out)  # a reader never sees a half-written file
        except OSError as exc:
            raise OversightError(
                f"{where}: cannot write the dataset's Parquet copy to {out.parent} ({exc.strerror or exc}); "
                f"set OVERSIGHT_CACHE_DIR to a writable folder."
            ) from None
    return out
