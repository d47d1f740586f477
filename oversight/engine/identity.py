"""A run's identity: every resolved setting that shapes a prompt, a sample or a score.

Two invocations are the same experiment exactly when their identities are equal. The
identity is stored in manifest.json when a run starts; `--resume` recomputes it from the
spec it is given and refuses to continue if anything differs, listing what (old -> new).
Its hash salts every episode id (`Plan.salted`), so rows of different experiments can never
be mistaken for one another in a journal.

Left out on purpose are settings that change how a run is carried out but not what it
measures: the budget, concurrency, cache location, description, and each model's limits,
timeouts, retries and prices.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from oversight.dialogue.prompts import Templates
from oversight.engine.prepare import Prepared
from oversight.model import redact
from oversight.model.providers import provider_class
from oversight.protocol import registry
from oversight.task.item import Item

OPERATIONAL_SPEC_KEYS = ("budget_usd", "concurrency", "cache_dir", "description")
MODEL_IDENTITY_KEYS = ("provider", "model", "base_url", "max_tokens", "temperature", "logprobs", "images", "sim")


def file_sha256(path: Path) -> str | None:
    """Content hash of a task's data file (or of every file under a data folder)."""
    if not path.exists():
        return None
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def items_sha256(items: list[Item]) -> str:
    """Hash of the sampled, binarised items: the questions and answers the run will show."""
    h = hashlib.sha256()
    for i in items:
        h.update(json.dumps([i.item_id, i.question, list(i.answers), i.correct, i.group, i.article],
                            ensure_ascii=False).encode())
        for img in i.images:
            h.update(hashlib.sha256(img.data).digest())
    return h.hexdigest()


def run_identity(prep: Prepared, templates: Templates) -> dict[str, Any]:
    spec = prep.spec.model_dump(mode="json")
    for key in OPERATIONAL_SPEC_KEYS:
        spec.pop(key, None)
    models: dict[str, dict[str, Any]] = {}
    for label, card in prep.cards.items():
        data = card.model_dump(mode="json")
        models[label] = {k: data.get(k) for k in MODEL_IDENTITY_KEYS}
        api = provider_class(card.provider)
        models[label]["code_version"] = api.cache_version
        # Only where there is something: an empty entry would differ from older manifests.
        if runtime := api.run_identity(card):
            models[label]["runtime"] = runtime
        if card.gguf is not None:
            from oversight.model.local_server import identity as local_identity

            models[label]["local"] = local_identity(card)
    tasks: dict[str, dict[str, Any]] = {}
    for name, tcard in prep.task_cards.items():
        path = prep.task_paths.get(name)
        tasks[name] = {
            "card": {k: v for k, v in tcard.items() if k not in ("card_path", "description")},
            "data_sha256": file_sha256(path) if path else None,
            "items_sha256": items_sha256(prep.items[name]),
        }
    identity: dict[str, Any] = {"spec": spec, "models": models, "tasks": tasks, "templates": templates.load_all()}
    plugins = plugin_protocols(prep)
    if plugins:  # only then: the identities of runs of the built-ins stay what they were
        identity["protocols"] = plugins
    # Credentials (a key inside an inline card's base_url) are never part of an identity:
    # it is written to manifest.json, and a rotated key is the same experiment.
    return redact.scrub_data(identity)


def plugin_protocols(prep: Prepared) -> dict[str, dict[str, Any]]:
    """Each protocol a plugin adds to this run, with the hash of its module's source: a
    changed protocol is another experiment (`--resume` refuses it)."""
    import inspect

    out: dict[str, dict[str, Any]] = {}
    for v in prep.variants.values():
        if registry.origin(v.base) == "built-in" or v.base in out:
            continue
        module = inspect.getmodule(type(registry.get(v.base)))
        source = inspect.getsource(module) if module is not None else ""
        out[v.base] = {"origin": registry.origin(v.base),
                       "source_sha256": hashlib.sha256(source.encode("utf-8")).hexdigest()}
    return out


def identity_hash(identity: dict[str, Any]) -> str:
    blob = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict) and data:
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: data}


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(dotted key, old value, new value) for every setting that differs."""
    a, b = flatten(old), flatten(new)
    missing = object()
    out = []
    for key in sorted(a.keys() | b.keys()):
        va, vb = a.get(key, missing), b.get(key, missing)
        # A setting added to the code since (absent before, null now) changes nothing.
        if {id(va), id(vb)} <= {id(missing), id(None)}:
            continue
        if va != vb:
            out.append((key, None if va is missing else va, None if vb is missing else vb))
    return out


def _short(value: Any, width: int = 48) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= width else text[: width - 1] + "…"


def describe_differences(diffs: list[tuple[str, Any, Any]], limit: int = 12) -> str:
    shown = [f"{k}: {_short(a)} → {_short(b)}" for k, a, b in diffs[:limit]]
    more = f"; and {len(diffs) - limit} more" if len(diffs) > limit else ""
    return "; ".join(shown) + more
