"""The registry of modality kinds, :data:`KINDS` (the timm pattern, plus old names).

``@KINDS.register("text")`` on a :class:`~core.kinds.base.ModalityKind` subclass
registers it; :func:`get_kind` returns its one shared instance and fails with
the known names; :func:`list_kinds` lists them in registration order. A kind
that was renamed keeps its old name as an alias (``features`` is today's
``tabular``): :func:`canonical_kind` maps it, and :func:`kind_alias_note` says
what to write instead.
"""
from __future__ import annotations

from typing import Any, Mapping

from core.kinds.base import ModalityKind
from core.registry import Registry


class KindRegistry(Registry[ModalityKind]):
    """A :class:`core.registry.Registry` of kinds that also resolves old names (aliases)."""

    def __init__(self) -> None:
        super().__init__("modality kind")
        self._aliases: dict[str, str] = {}
        self._instances: dict[str, ModalityKind] = {}

    def add_alias(self, old: str, new: str) -> None:
        """Accept ``old`` wherever ``new`` is meant (a renamed kind)."""
        if old in self._entries:
            raise ValueError(f"{self.what} alias {old!r} is a registered name")
        self._aliases[old] = new

    def aliases(self) -> dict[str, str]:
        return dict(self._aliases)

    def canonical(self, name: str) -> str:
        """The registered name ``name`` stands for (itself unless it is an alias)."""
        return self._aliases.get(name, name)

    def get(self, name: str) -> Any:
        return super().get(self.canonical(name))

    def meta(self, name: str) -> dict[str, Any]:
        return super().meta(self.canonical(name))

    def unregister(self, name: str) -> None:
        super().unregister(name)
        self._instances.pop(name, None)

    def instance(self, name: str) -> ModalityKind:
        """The one shared instance of the kind ``name`` (kinds are stateless)."""
        key = self.canonical(name)
        if key not in self._instances:
            self._instances[key] = self.create(key)
        return self._instances[key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.canonical(name) in self._entries


KINDS = KindRegistry()
KINDS.add_alias("features", "tabular")  # the kind's name before it had an encoder


def get_kind(name: str) -> ModalityKind:
    """The registered kind ``name`` (an alias resolves); unknown names fail listing the known ones."""
    return KINDS.instance(name)


def list_kinds() -> list[str]:
    """The registered kind names, in registration order."""
    return KINDS.names()


def kinds_of(modalities: Mapping[str, str]) -> dict[ModalityKind, list[str]]:
    """The kinds of ``modalities`` (name -> kind name), each with its modalities in order."""
    out: dict[ModalityKind, list[str]] = {}
    for m, kind in modalities.items():
        out.setdefault(get_kind(kind), []).append(m)
    return out


def canonical_kind(name: str) -> str:
    """``name``, or the kind an old name stands for (``features`` -> ``tabular``)."""
    return KINDS.canonical(name)


def kind_alias_note(name: str) -> str | None:
    """What to write instead of an old kind name; None for a current name."""
    new = KINDS.aliases().get(name)
    if new is None:
        return None
    return f'kind = "{name}" is the old name of kind "{new}"; write kind = "{new}"'
