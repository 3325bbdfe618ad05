"""Encoders, one registry for every modality kind.

Each encoder is registered with the kind it encodes (``kind="text"``, ...); every
kind of :mod:`core.kinds` names its default one (:func:`default_encoder`).
"""
from __future__ import annotations

import inspect
import re
from typing import Any

from core.encoders._base import Encoder
from core.kinds import canonical_kind, get_kind
from core.registry import Registry

ENCODERS: Registry[Encoder] = Registry("encoder")


def create_encoder(name: str, **kwargs: Any) -> Encoder:
    """Build a registered encoder by name; unknown names list the known ones."""
    enc = ENCODERS.create(name, **kwargs)
    type(enc).registry_name = type(enc).registry_name or name
    return enc


def list_encoders(kind: str | None = None) -> list[str]:
    return ENCODERS.names(kind=canonical_kind(kind)) if kind else ENCODERS.names()


def default_encoder(kind: str) -> str:
    """The encoder a modality kind suggests first (``core.kinds``); unknown kinds list the known ones."""
    return get_kind(kind).default_encoder


def describe_encoder(name: str) -> str:
    """One sentence on what a registered encoder is: the first sentence of its docstring."""
    doc = inspect.getdoc(ENCODERS.get(name)) or ""
    first = " ".join(doc.split("\n\n")[0].split())
    return re.split(r"(?<=\.)\s", first, maxsplit=1)[0].replace("``", "`")


def encoders_markdown() -> str:
    """The README's encoder list: every registered encoder with its kind, grouped by kind."""
    names = ENCODERS.names()
    kinds = list(dict.fromkeys(ENCODERS.meta(n)["kind"] for n in names))
    lines = ["| kind | encoder | what it is |", "|---|---|---|"]
    for kind in kinds:
        for name in ENCODERS.names(kind=kind):
            lines.append(f"| {kind} | `{name}` | {describe_encoder(name).replace('|', '/')} |")
    return "\n".join(lines) + "\n"


# Importing the modules registers their encoders.
from core.encoders import _image, _tabular, _text, _video  # noqa: E402,F401

__all__ = ["ENCODERS", "Encoder", "create_encoder", "default_encoder", "describe_encoder", "encoders_markdown",
           "list_encoders"]
