"""Lazy public names for a package split into private modules (PEP 562).

A package lists which private module provides each public name; the module is
imported on the first look-up of one of its names, so importing the package
(for example to read stored results in the dashboard) imports none of the heavy
modules behind it.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping, MutableMapping, Sequence


def lazy_exports(package: str, namespace: MutableMapping[str, Any], exports: Mapping[str, Sequence[str]],
                 ) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``(__all__, __getattr__, __dir__)`` of ``package`` whose private module ``m`` provides the names
    ``exports[m]``; ``namespace`` is the package's ``globals()``, where a loaded name is kept, so later
    look-ups skip ``__getattr__``."""
    where = {name: module for module, names in exports.items() for name in names}
    public = sorted(where)

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(public))

    return public, __getattr__, __dir__
