"""Prompt templates: plain text files under protocols/templates/, with `$name` variables.

Templates only substitute (string.Template); any logic lives in the protocol code. Each
template's sha256 goes into the run manifest, so a result can be traced to its wording.
Optional blocks (rules, examples, article) render as empty strings; the runs of blank
lines they leave behind are collapsed to one, so templates can keep each block on its own
line.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from string import Template

from oversight import catalogue
from oversight.errors import OversightError

_BLANK_RUNS = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")


class Templates:
    """The templates of one prompt set: `protocols/templates/NAME.txt`, or, with
    `prompt_set`, `protocols/templates/SET/NAME.txt` where the set has its own version."""

    def __init__(self, prompt_set: str | None = None) -> None:
        self.prompt_set = prompt_set
        self._cache: dict[str, tuple[Template, str, Path]] = {}

    def _candidates(self, name: str) -> list[Path]:
        folders = [f / "templates" for f in catalogue.folders("protocols")]
        mine = [f / self.prompt_set / f"{name}.txt" for f in folders] if self.prompt_set else []
        return [*mine, *(f / f"{name}.txt" for f in folders)]

    def _load(self, name: str) -> tuple[Template, str, Path]:
        if name not in self._cache:
            for path in self._candidates(name):
                if path.exists():
                    text = path.read_text(encoding="utf-8")
                    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
                    self._cache[name] = (Template(text), digest, path)
                    break
            else:
                raise OversightError(f"Prompt template '{name}.txt' not found under protocols/templates/.")
        return self._cache[name]

    def render(self, name: str, /, **values: object) -> str:
        template, _, path = self._load(name)
        try:
            text = template.substitute({k: str(v) for k, v in values.items()})
        except KeyError as exc:
            raise OversightError(f"{path}: template variable ${exc.args[0]} has no value.") from None
        except ValueError as exc:
            raise OversightError(f"{path}: malformed template ({exc}); write a literal $ as $$.") from None
        return _BLANK_RUNS.sub("\n\n", text).strip() + "\n"

    def load_all(self) -> dict[str, str]:
        """sha256 of every template the catalogue offers (the first found of each name, and
        every prompt set's as SET/NAME): a run's identity covers the wording of every prompt
        it could send."""
        roots = [f / "templates" for f in catalogue.folders("protocols")]
        names = {f.stem for r in roots for f in r.glob("*.txt")}
        for name in names:
            self._load(name)
        out = self.hashes()
        for r in roots:
            for f in sorted(r.glob("*/*.txt")):
                out.setdefault(f"{f.parent.name}/{f.stem}", hashlib.sha256(f.read_bytes()).hexdigest())
        return dict(sorted(out.items()))

    @staticmethod
    def set_exists(prompt_set: str) -> bool:
        return any((f / "templates" / prompt_set).is_dir() for f in catalogue.folders("protocols"))

    def hashes(self) -> dict[str, str]:
        """sha256 of every template used so far."""
        return {name: digest for name, (_, digest, _) in sorted(self._cache.items())}
