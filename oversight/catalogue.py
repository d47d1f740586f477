"""Finding the catalogue: protocols/, tasks/, judges/ and runs/ (specs, runs/NAME.yaml).

Each kind of folder is looked up on its own, first match wins:

1. folders added with `--include PATH` (or `include(path)`), latest first;
2. the working directory's own folder of that kind (`./judges/` alone is enough);
3. the project root: the nearest parent of the working directory that holds both tasks/
   and protocols/ (so a notebook in `project/notebooks/` still finds `project/judges/`);
4. the bundled catalogue: the source checkout of an editable install, or the copy a wheel
   carries inside the package (`oversight/_catalogue/`).

A name is resolved file by file, so `./judges/x.yaml` adds a judge while every bundled card
stays available, and a local file with a bundled name overrides the bundled one.
Run outputs always go to `./runs/NAME/` of the working directory (engine/rundir.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from oversight.errors import OversightError, clip

KINDS = ("protocols", "tasks", "judges", "runs")
_extra: list[Path] = []
_PACKAGE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Source:
    """One folder of one kind, and where it came from (shown by `oversight list`)."""

    folder: Path
    origin: str  # "--include PATH" | "here" | "project ROOT" | "bundled"


@dataclass(frozen=True)
class Entry:
    name: str
    path: Path
    origin: str
    overrides: tuple[str, ...] = ()  # origins of files with the same name that this one hides


def include(path: str | Path) -> None:
    """Add a folder that holds protocols/, tasks/, judges/ or runs/ (or is one of them).

    A folder that does not exist or holds none of them is an error: ignoring it would run
    with the bundled catalogue while the user believes their own cards are in use.
    """
    p = Path(path).expanduser()
    shown = clip(str(path), 200)
    if not p.exists():
        raise OversightError(f"--include {shown}: no such folder.")
    if not p.is_dir():
        raise OversightError(
            f"--include {shown}: not a folder (give the folder that holds tasks/, judges/, protocols/ or runs/)."
        )
    p = p.resolve()
    if p.name not in KINDS and not any((p / k).is_dir() for k in KINDS):
        raise OversightError(
            f"--include {shown}: holds none of {', '.join(k + '/' for k in KINDS)} and is not one of them; "
            f"give the folder that holds your tasks/, judges/, protocols/ or runs/ folder."
        )
    if p not in _extra:
        _extra.insert(0, p)


def _project_root(here: Path) -> Path | None:
    """The nearest folder above `here` that holds a judges/, tasks/ or protocols/ folder:
    a notebook in project/notebooks/ finds project/judges/ (the bundled catalogue, which
    holds them all, is not a project)."""
    bundled = {r.resolve() for r in bundled_roots()}
    for d in here.parents:
        if d.resolve() in bundled:
            continue
        if any((d / kind).is_dir() for kind in ("judges", "tasks", "protocols")):
            return d
    return None


def searched(kind: str) -> str:
    """Where a name of `kind` was looked for, for an error message: the folders in
    precedence order, whether they exist or not, and how to add one."""
    here = Path.cwd().resolve()
    places = [str(root / kind) for root in _extra] + [str(here / kind)]
    project = _project_root(here)
    places.append(str(project / kind) if project is not None else
                  f"{kind}/ in a folder above {here} (none has judges/, tasks/ or protocols/)")
    places += [f"the bundled {kind}/"]
    return (f"Looked in: {'; '.join(places)}. A folder elsewhere can be added with "
            f"`oversight.include(PATH)` in Python or `--include PATH` on the command line.")


def bundled_roots() -> list[Path]:
    """The catalogue shipped with the package: a source checkout (editable install) and/or
    the wheel's copy."""
    out = []
    src = _PACKAGE.parent
    if (src / "tasks").is_dir() and (src / "protocols").is_dir():
        out.append(src)
    if (_PACKAGE / "_catalogue").is_dir():
        out.append(_PACKAGE / "_catalogue")
    return out


def sources(kind: str) -> list[Source]:
    """Every existing folder of one kind, in precedence order, each with its origin."""
    found: list[Source] = []
    for root in _extra:
        for cand in (root / kind, root if root.name == kind else None):
            if cand is not None and cand.is_dir():
                found.append(Source(cand, f"--include {root}"))
    here = Path.cwd().resolve()
    found.append(Source(here / kind, "here"))
    project = _project_root(here)
    if project is not None:
        found.append(Source(project / kind, f"project {project}"))
    found += [Source(r / kind, "bundled") for r in bundled_roots()]
    out: list[Source] = []
    seen: set[Path] = set()
    for s in found:
        if s.folder.is_dir() and s.folder.resolve() not in seen:
            seen.add(s.folder.resolve())
            out.append(s)
    return out


def folders(kind: str) -> list[Path]:
    """Every existing folder of one kind ('tasks', 'protocols', 'judges', 'runs'), first wins."""
    return [s.folder for s in sources(kind)]


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
    return [e.name for e in entries(kind, suffix)]


def entries(kind: str, suffix: str = ".yaml") -> list[Entry]:
    """Every name of one kind with the file that wins and where it comes from, by name."""
    seen: dict[str, list[tuple[Path, str]]] = {}
    for s in sources(kind):
        for f in sorted(s.folder.glob(f"*{suffix}")):
            if f.is_file():
                seen.setdefault(f.name[: -len(suffix)], []).append((f, s.origin))
    out = []
    for name, hits in sorted(seen.items()):
        (path, origin), hidden = hits[0], hits[1:]
        out.append(Entry(name, path, origin, tuple(dict.fromkeys(o for _, o in hidden))))
    return out


def resolve_spec(spec: str) -> str:
    """A spec argument as a path: an existing file as given, else a spec name (`quickstart`)
    looked up in the runs/ folders; anything else unchanged, for the loader to report."""
    p = Path(spec)
    if p.is_file() or p.suffix in (".yaml", ".yml") or "/" in spec or "\\" in spec:
        return spec
    found = find("runs", spec)
    return str(found) if found is not None else spec
