"""ui.exports: a selection of samples as a table and as CSV that a spreadsheet opens safely."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd

from ui.exports import selection_csv, selection_frame, spreadsheet_safe

VIEW = pd.DataFrame({
    "title": ["=HYPERLINK(\"http://x\")", "plain", "+1+2", "@SUM(A1)", "-3", "\tcmd"],
    "id": ["a", "b", "c", "d", "e", "f"],
    "share_image": [0.5, -0.25, 0.1, 0.2, 0.3, np.nan],
    "label": ["cat", "dog", "cat", "dog", "cat", "dog"],
    "pred": ["cat", "cat", "cat", "dog", "dog", "dog"],
    "confidence": [0.9, 0.6, 0.8, 0.7, 0.55, 0.95],
    "correct": [True, False, True, True, False, True],
    "dominant": ["image", None, "title", "image", "title", None],
})
MANIFEST = pd.DataFrame({"id": ["a", "b", "c", "d", "e", "f", "z"], "label": ["cat"] * 7,
                         "variant": ["day", "night", "=cmd|' /C calc'!A0", "day", "dusk", "night", "day"],
                         "depth_m": [1.5, -2.0, 3.0, 4.0, 5.0, 6.0, 7.0]})


def test_selection_frame_orders_columns_and_joins_the_manifest():
    frame = selection_frame(VIEW, MANIFEST, ids=["c", "a", "e"])
    assert list(frame.columns) == ["id", "label", "pred", "confidence", "correct", "dominant", "share_image", "title",
                                   "variant", "depth_m"]
    assert list(frame["id"]) == ["a", "c", "e"]                      # the order of the rows, not of ids
    assert list(frame["variant"]) == ["day", "=cmd|' /C calc'!A0", "dusk"]
    assert list(frame["label"]) == ["cat", "cat", "cat"]              # the view's label, not the manifest's
    assert len(selection_frame(VIEW)) == 6 and "variant" not in selection_frame(VIEW).columns


def test_the_csv_quotes_formulas_and_keeps_numbers():
    data = selection_csv(selection_frame(VIEW, MANIFEST))
    back = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    assert list(back["id"]) == list("abcdef")
    assert list(back["title"]) == ["'=HYPERLINK(\"http://x\")", "plain", "'+1+2", "'@SUM(A1)", "'-3", "'\tcmd"]
    assert back.loc[back["id"] == "c", "variant"].item() == "'=cmd|' /C calc'!A0"
    # numbers are no formulas: a negative share or depth stays a number
    assert back.loc[back["id"] == "b", "share_image"].item() == "-0.25"
    assert back.loc[back["id"] == "b", "depth_m"].item() == "-2.0"
    assert list(back["correct"]) == ["True", "False", "True", "True", "False", "True"]
    assert back.loc[back["id"] == "b", "dominant"].item() == ""       # not explained: an empty cell
    for cell in back.drop(columns=["share_image", "depth_m", "confidence"]).to_numpy().ravel():
        assert not str(cell).startswith(("=", "+", "-", "@", "\t", "\r"))


def test_a_formula_in_a_column_name_is_quoted_too():
    safe = spreadsheet_safe(pd.DataFrame({"=bad": ["x"], "ok": ["=1"]}))
    assert list(safe.columns) == ["'=bad", "ok"] and safe["ok"].item() == "'=1"
