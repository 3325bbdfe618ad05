"""The encoder registry, :data:`ENCODERS`: one for every modality kind (the timm pattern).

Each encoder module registers its classes here with the kind they encode
(``@ENCODERS.register("minilm", kind="text")``); every kind of :mod:`core.kinds`
names its default one (:func:`default_encoder`). The registry lives in its own
module, apart from the package ``__init__`` that imports the encoder modules,
so registering never imports the package that is still being imported.
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
    """The registered encoders, or those of modality kind ``kind`` (an old kind name resolves)."""
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
