"""Finding the data folders (protocols/, tasks/, judges/, runs/).

Searched in order: folders added with --include, the working directory and its parents
(the project root), then the copy a wheel carries inside the package.
"""

from __future__ import annotations

from pathlib import Path

from oversight.errors import OversightError, clip

KINDS = ("protocols", "tasks", "judges", "runs")
_extra: list[Path] = []


def include(path: str | Path) -> None:
    """Add a folder that holds protocols/, tasks/ or judges/ (or is one of them).

    A folder that does not exist or holds none of them is an error: ignoring it would run
    with the bundled catalogue while the user believes their own cards are in use.
    """
    p = Path(path).expanduser()
    shown = clip(str(path), 200)
    if not p.exists():
        raise OversightError(f"--include {shown}: no such folder.")
    if not p.is_dir():
        raise OversightError(
            f"--include {shown}: not a folder (give the folder that holds tasks/, judges/ or protocols/)."
        )
    p = p.resolve()
    if p.name not in KINDS and not any((p / k).is_dir() for k in KINDS):
        raise OversightError(
            f"--include {shown}: holds none of {', '.join(k + '/' for k in KINDS)} and is not one of them; "
            f"give the folder that holds your tasks/, judges/ or protocols/ folder."
        )
    if p not in _extra:
        _extra.insert(0, p)


def roots() -> list[Path]:
    found: list[Path] = list(_extra)
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        if (d / "tasks").is_dir() and (d / "protocols").is_dir():
            found.append(d)
            break
    # The source checkout this package was imported from (editable installs).
    src = Path(__file__).resolve().parent.parent
    if (src / "tasks").is_dir() and src not in found:
        found.append(src)
    packaged = Path(__file__).resolve().parent / "_catalogue"
    if packaged.is_dir():
        found.append(packaged)
    return found


def folders(kind: str) -> list[Path]:
    """Every existing folder of one kind ('tasks', 'protocols', 'judges', 'runs')."""
    out = []
    for r in roots():
        for cand in (r / kind, r if r.name == kind else None):
            if cand is not None and cand.is_dir() and cand not in out:
                out.append(cand)
    return out


def find(kind: str, name: str, suffix: str = ".yaml") -> Path | None:
    """The file for a catalogue name, or None. A name with a suffix or slash is a path."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") or "/" in name:
        return p if p.exists() else None
    for folder in folders(kind):
        cand = folder / f"{name}{suffix}"
        if cand.exists():
            return cand
    return None


def names(kind: str, suffix: str = ".yaml") -> list[str]:
    out: set[str] = set()
    for folder in folders(kind):
        out.update(f.name[: -len(suffix)] for f in folder.glob(f"*{suffix}"))
    return sorted(out)
