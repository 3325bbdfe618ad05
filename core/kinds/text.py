"""The text kind: a manifest cell holds the text itself; players are its tokens.

Empty cells follow the modality's ``empty`` rule (``[modalities.<name>] empty``):
``refuse`` (default: an error naming the samples), ``drop`` (the samples are
removed, and reported) or ``keep`` (the encoder sees ``""``). A masked token's
id becomes the tokenizer's pad id with the attention mask unchanged (the model
sees a pad token in place, the reference MM-SHAP choice); special tokens
(``[CLS]``, ``[SEP]``) and padding are never players and never change.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

from core.errors import ConfigError, DataError
from core.kinds.registry import KINDS
from core.kinds.base import PREVIEW, DatasetLike, MaskerContext, ModalityKind, OptionKey, preview
from core.kinds.masking import Masker, single_input

if TYPE_CHECKING:
    import torch

EMPTY_TEXT_RULES = ("refuse", "drop", "keep")


@KINDS.register("text")
class TextKind(ModalityKind):
    """Strings; one player per non-special token."""

    name = "text"
    default_encoder = "minilm"
    input_keys = ("input_ids",)
    fill = "pad token"
    feature_columns = {"token": "str", "position": "int"}
    cell_doc = "the text itself"
    text_cells = True
    options = {
        "empty": OptionKey("str", "rule for empty text cells: `refuse` (an error naming the samples), `drop` (remove "
                           "those samples) or `keep` (the encoder sees an empty string); prepare reports the count",
                           "refuse", choices=EMPTY_TEXT_RULES),
    }

    def file_columns(self, modality: str, options: Mapping[str, Any]) -> list[str]:
        return []

    def check_cells(self, frame: pd.DataFrame, modality: str, options: Mapping[str, Any],
                    report: dict[str, Any]) -> pd.DataFrame:
        """Apply the ``empty`` rule; what it changed goes to ``report["empty_text"][modality]``."""
        blank = frame[modality].isna() | (frame[modality].astype(str).str.strip() == "")
        blank_ids = frame["id"][blank].tolist()
        rule = options.get("empty", "refuse")
        if rule not in EMPTY_TEXT_RULES:
            raise DataError(f"unknown empty-text rule {rule!r} for modality {modality!r}",
                            fix=f"use one of: {', '.join(EMPTY_TEXT_RULES)}")
        if blank_ids and rule == "refuse":
            raise DataError(f"modality {modality!r}: sample(s) {preview(blank_ids)} have empty text ({len(blank_ids)} "
                            f"of {len(frame)})",
                            fix=f'fill them in, or set a rule in [modalities.{modality}] of the experiment file: '
                                'empty = "drop" (remove those samples) or empty = "keep" (the encoder sees an empty '
                                'string)')
        if rule == "drop":
            frame = frame[~blank].reset_index(drop=True)
        elif rule == "keep" and blank_ids:
            frame[modality] = frame[modality].astype(object).where(~blank, "")
        report.setdefault("empty_text", {})[modality] = {"rule": rule, "samples": len(blank_ids),
                                                          "ids": blank_ids[:PREVIEW]}
        return frame

    def check_files(self, frame: pd.DataFrame, modality: str, root: Path, options: Mapping[str, Any], *,
                    progress: bool = False) -> None:
        """Text has no files."""

    def load(self, dataset: DatasetLike, modality: str, rows: pd.DataFrame) -> list[Any]:
        # a missing cell (kept by the rule empty = "keep") is the empty string
        return ["" if c is None or (isinstance(c, float) and np.isnan(c)) else str(c) for c in rows[modality]]

    def build_masker(self, inputs: dict[str, torch.Tensor], *, encoder: Any = None,
                     context: MaskerContext = MaskerContext()) -> TextTokenMasker:
        return TextTokenMasker(inputs, pad_token_id=getattr(encoder, "pad_token_id", 0),
                               tokens=_token_strings(encoder, inputs))

    def token_count(self, masker: Masker) -> int | None:
        return int(masker.n_tokens)  # type: ignore[attr-defined]

    def feature_label(self, info: Mapping[str, Any]) -> str:
        return str(info.get("token"))


def _token_strings(encoder: Any, inputs: dict[str, torch.Tensor]) -> list[str] | None:
    tokens = getattr(encoder, "tokens", None)
    if callable(tokens):
        try:
            return list(tokens(inputs, 0))
        except Exception:  # token strings are cosmetic: ids are shown instead
            return None
    return None


class TextTokenMasker(Masker):
    """Players are the non-special, attended tokens; a masked token becomes the pad id.

    Args:
        inputs: text inputs of one sample (``input_ids``, ``special_tokens_mask``,
            optional ``attention_mask``).
        pad_token_id: id written in place of a masked token.
        tokens: token strings, one per position of ``input_ids`` or one per player.
    """

    kind = "text"
    input_keys = ("input_ids",)

    def __init__(self, inputs: dict[str, torch.Tensor], *, pad_token_id: int,
                 tokens: Sequence[str] | None = None) -> None:
        import torch  # lazy: core.kinds is read without torch (see core.kinds.masking)

        ids = single_input(inputs, "input_ids", "text", 2)
        special = single_input(inputs, "special_tokens_mask", "text", 2)
        attention = inputs.get("attention_mask")
        attention = torch.ones_like(ids) if attention is None else single_input(inputs, "attention_mask", "text", 2)
        if isinstance(pad_token_id, bool) or int(pad_token_id) != pad_token_id:
            raise ConfigError(f"pad_token_id must be an integer, got {pad_token_id!r}",
                              fix="pass tokenizer.pad_token_id")
        self.pad_token_id = int(pad_token_id)
        keep = (attention[0] != 0) & (special[0] == 0)
        self.positions = torch.nonzero(keep, as_tuple=False)[:, 0].cpu()
        self.n_features = int(len(self.positions))
        #: attended tokens, special tokens included (the count of the reference grid rule)
        self.n_tokens = int((attention[0] != 0).sum())
        self.seq_len = int(ids.shape[1])
        if tokens is None:
            self.tokens = [str(int(t)) for t in ids[0, self.positions].tolist()]
        else:
            tokens = [str(t) for t in tokens]
            if len(tokens) == self.seq_len:
                self.tokens = [tokens[i] for i in self.positions.tolist()]
            elif len(tokens) == self.n_features:
                self.tokens = tokens
            else:
                raise ConfigError(
                    f"got {len(tokens)} token strings for {self.seq_len} positions ({self.n_features} maskable)",
                    fix="pass one string per position of input_ids, or one per maskable token",
                )

    def apply(self, inputs: dict[str, torch.Tensor], mask: Any) -> dict[str, torch.Tensor]:
        import torch  # lazy: see core.kinds.masking

        ids = single_input(inputs, "input_ids", "text", 2)
        m = self._mask(mask, ids.device)
        batch = m.shape[0]
        out = self._repeat(inputs, batch, skip=("input_ids",))
        new_ids = ids.expand(batch, ids.shape[1]).clone()
        pos = self.positions.to(ids.device)
        pad = torch.full((), self.pad_token_id, dtype=ids.dtype, device=ids.device)
        new_ids[:, pos] = torch.where(m, new_ids[:, pos], pad)
        out["input_ids"] = new_ids
        return out

    def describe(self) -> list[dict[str, Any]]:
        return [{"token": tok, "position": int(pos)} for tok, pos in zip(self.tokens, self.positions.tolist())]
