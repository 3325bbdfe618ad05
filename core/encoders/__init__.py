"""Encoders, one registry for every modality kind."""
from __future__ import annotations

from typing import Any

from core.encoders._base import Encoder
from core.registry import Registry

ENCODERS: Registry[Encoder] = Registry("encoder")


def create_encoder(name: str, **kwargs: Any) -> Encoder:
    """Build a registered encoder by name; unknown names list the known ones."""
    enc = ENCODERS.create(name, **kwargs)
    type(enc).registry_name = type(enc).registry_name or name
    return enc


def list_encoders(kind: str | None = None) -> list[str]:
    return ENCODERS.names(kind=kind) if kind else ENCODERS.names()


# Importing the modules registers their encoders.
from core.encoders import _image, _text, _video  # noqa: E402,F401

__all__ = ["ENCODERS", "Encoder", "create_encoder", "list_encoders"]
