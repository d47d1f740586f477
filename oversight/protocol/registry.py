"""Protocols by name: every protocol, the six built-ins included, is found here.

A protocol is a subclass of `oversight.protocol.base.Protocol` (the contract is in that
module's docstring). A package adds one with an entry point in the `oversight.protocols`
group, exactly as oversight registers its own six in its pyproject.toml:

    [project.entry-points."oversight.protocols"]
    cross_examination = "cross_examination:CrossExamination"

after which a spec may list `protocols: [cross_examination]`. The entry point's name must be
the class's `name`. A protocol of oversight's own cannot be taken over by a plugin. In a
notebook, `oversight.register_protocol(MyProtocol)` does the same for one process.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from oversight.errors import OversightError, unknown_name
from oversight.model.registry import import_target
from oversight.protocol.base import GROUPS, Protocol

GROUP = "oversight.protocols"
OWN_DIST = "oversight"


@dataclass(frozen=True)
class ProtocolInfo:
    name: str
    target: str | type[Protocol]  # "module:Class", or the class itself (registered in process)
    origin: str  # built-in | plugin DIST | registered


_registered: dict[str, ProtocolInfo] = {}
_found: tuple[tuple[str, ...], dict[str, ProtocolInfo]] | None = None
_loaded: dict[tuple[str, str], Protocol] = {}


def _discovered() -> dict[str, ProtocolInfo]:
    """Entry points of the group, read again whenever sys.path changes. oversight's own
    come first, so a plugin cannot take over a built-in name."""
    global _found
    key = tuple(sys.path)
    if _found is None or _found[0] != key:
        own: dict[str, ProtocolInfo] = {}
        other: dict[str, ProtocolInfo] = {}
        for ep in entry_points(group=GROUP):
            dist = getattr(ep, "dist", None)
            dist_name = dist.name if dist is not None else ""
            if dist_name == OWN_DIST:
                own.setdefault(ep.name, ProtocolInfo(ep.name, ep.value, "built-in"))
            else:
                other.setdefault(ep.name, ProtocolInfo(ep.name, ep.value, f"plugin {dist_name or '?'}"))
        if not own:
            raise OversightError(
                f"oversight's own protocols are not registered: its package metadata has no '{GROUP}' entry "
                f"points (it was installed before protocols became plugins). Reinstall it, e.g. `pip install -e .` "
                f"in a checkout or `pip install --force-reinstall oversight`."
            )
        _found = (key, {**other, **own})
    return _found[1]


def _infos() -> dict[str, ProtocolInfo]:
    # A notebook's registration wins over an installed plugin of that name; neither can be built-in.
    return {**_discovered(), **_registered}


def builtin_names() -> list[str]:
    return sorted(n for n, i in _discovered().items() if i.origin == "built-in")


def register(protocol: type[Protocol] | str, name: str | None = None) -> None:
    """Add a protocol for this process: a Protocol subclass, or "module:Class"."""
    if not isinstance(protocol, str):
        name = name or protocol.name
    if not name:
        raise OversightError("register_protocol: give the protocol's name (its class sets none).")
    if _discovered().get(name, ProtocolInfo(name, "", "")).origin == "built-in":
        raise OversightError(f"'{name}' is a built-in protocol; register yours under another name.")
    _registered[name] = ProtocolInfo(name, protocol, "registered")
    _loaded.pop((name, "registered"), None)


def names() -> list[str]:
    return sorted(_infos())


def _import(info: ProtocolInfo) -> Protocol:
    cached = _loaded.get((info.name, info.origin))
    if cached is not None and (not isinstance(info.target, type) or type(cached) is info.target):
        return cached
    obj: Any = info.target
    if isinstance(obj, str):
        try:
            obj = import_target(obj)
        except Exception as exc:  # noqa: BLE001 - any failure of a plugin's import is the plugin's
            raise OversightError(
                f"The '{info.name}' protocol ({info.origin}, {info.target}) cannot be imported: "
                f"{type(exc).__name__}: {exc}. Reinstall the package that provides it."
            ) from None
    if not (isinstance(obj, type) and issubclass(obj, Protocol)):
        raise OversightError(
            f"The '{info.name}' protocol ({info.origin}) names {info.target}, which is not a subclass of "
            f"oversight.protocol.base.Protocol."
        )
    problem = _problem(obj, info.name)
    if problem:
        raise OversightError(f"The '{info.name}' protocol ({info.origin}, {info.target}): {problem}.")
    instance = obj()
    _loaded[(info.name, info.origin)] = instance
    return instance


def _problem(cls: type[Protocol], name: str) -> str | None:
    if cls.name != name:
        return f"its class sets name = {cls.name!r}, but it is registered as '{name}'; make the two the same"
    bad = [g for g in cls.groups if g not in GROUPS]
    if bad or not cls.groups:
        return f"groups {list(cls.groups)} must be a non-empty list of {', '.join(GROUPS)}"
    if cls.derived_from is None and getattr(cls.plan, "__isabstractmethod__", False):
        return "it defines no plan()"
    return None


def get(name: str, where: str = "") -> Protocol:
    info = _infos().get(name)
    if info is None:
        raise unknown_name("protocol", name, names(), where)
    return _import(info)


def find(name: str) -> Protocol | None:
    """The protocol if it is known and loads, else None (for display of stored rows, which
    may name a protocol whose package is not installed here)."""
    info = _infos().get(name)
    if info is None:
        return None
    try:
        return _import(info)
    except OversightError:
        return None


def origin(name: str) -> str:
    info = _infos().get(name)
    return info.origin if info else "unknown"


def ordered() -> list[Protocol]:
    """Every protocol that loads, in display order."""
    found = [p for p in (find(n) for n in names()) if p is not None]
    return sorted(found, key=lambda p: (p.order, p.name))


def rank(name: str) -> int:
    """The display rank of a protocol name (unknown names after every known one)."""
    p = find(name)
    return p.order if p is not None else 10_000


def colour(name: str) -> str | None:
    p = find(name)
    return p.colour if p is not None else None


def headline_pairs() -> tuple[tuple[str, str], ...]:
    """The comparisons the headline lists, as (protocol_a, protocol_b), in order."""
    protos = sorted(ordered(), key=lambda p: (p.headline_rank, p.order, p.name))
    return tuple((p.name, other) for p in protos for other in p.headline)


def game_protocols() -> tuple[str, ...]:
    """Protocols whose rows are games between `agent` and `agent_b` (Elo)."""
    return tuple(p.name for p in ordered() if p.games)


def derived_protocols() -> tuple[str, ...]:
    """Protocols whose rows are selected from another protocol's (the open ones)."""
    return tuple(p.name for p in ordered() if p.derived_from is not None)


def source_of(name: str) -> str:
    """The protocol a derived protocol's rows come from (the name itself for any other)."""
    p = find(name)
    return p.derived_from if p is not None and p.derived_from is not None else name
