"""Encoders, one registry for every modality kind.

Each encoder is registered with the kind it encodes (``kind="text"``, ...) in
:data:`ENCODERS` (:mod:`core.encoders.registry`); every kind of :mod:`core.kinds`
names its default one (:func:`default_encoder`). One module per family:
``_image`` (a small CNN and ViT, any Hugging Face vision model), ``_text``
(MiniLM, any Hugging Face text model), ``_video`` (C3D, SlowFast,
TimeSformer), ``_tabular`` (MLP), ``_timeseries`` (GRU, TCN), ``_audio`` (a CNN on log-mel
spectrograms); the contract is
:class:`Encoder` (``_base``). Importing this package registers them all.
"""
from __future__ import annotations

from core.encoders._base import Encoder
from core.encoders.registry import (
    ENCODERS,
    create_encoder,
    default_encoder,
    describe_encoder,
    encoders_markdown,
    list_encoders,
)

# Importing the modules registers their encoders.
from core.encoders import _image, _tabular, _text, _video  # noqa: E402,F401,I001
from core.encoders import _timeseries  # noqa: E402,F401
from core.encoders import _audio  # noqa: E402,F401
# the contract of video encoders, and how they read depth
from core.encoders._video import DEPTH_INPUTS, VideoEncoder, fill_depth_holes  # noqa: E402

__all__ = ["DEPTH_INPUTS", "ENCODERS", "Encoder", "VideoEncoder", "create_encoder", "default_encoder", "describe_encoder",
           "encoders_markdown", "fill_depth_holes", "list_encoders"]
