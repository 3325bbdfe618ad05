"""ui.story: the Overview's headline on hand-made results, predictions and shares whose answers are known:
the best run over every modality (and its tie rules), the best run overall beside it, the fusion gain
with its paired interval (clear gain, no clear gain, a loss), the fusion methods ranked, which modality
matters most (n, interval, correct vs incorrect, flat predictions left out), and every empty state."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import BundleError
from ui.story import FEW_SAMPLES, PAGE_TITLES, Sentence, make_story

MODS = ["image", "title", "description"]
N = 400
FULL = "+".join(MODS)


def results(rows: dict[str, float]) -> pd.DataFrame:
    """A results table: ``run -> top1``; the run's name gives its fusion and modalities."""
    out = []
    for run, top1 in rows.items():
        fusion, _, mods = run.rpartition("-")
        out.append({"run": run, "fusion": fusion, "strategy": "unimodal" if fusion == "unimodal" else "intermediate",
                    "modalities": mods, "top1": top1, "top3": top1, "top5": top1, "macro_f1": top1})
    return pd.DataFrame(out)


def predictions(right: dict[str, np.ndarray]):
    """``predictions`` callable of make_story: each run right exactly on the given samples."""
    ids = [f"s{i:03d}" for i in range(N)]
    frames = {run: pd.DataFrame({"id": ids, "correct": mask}) for run, mask in right.items()}
    return frames.get


def first(k: int, offset: int = 0) -> np.ndarray:
    mask = np.zeros(N, dtype=bool)
    mask[offset:offset + k] = True
    return mask


TABLE = results({"unimodal-image": 0.60, "unimodal-title": 0.80, "unimodal-description": 0.70,
                 f"gated-{FULL}": 0.85, f"concat-{FULL}": 0.85, f"late-average-{FULL}": 0.80,
                 "max-title+description": 0.87})
# the full runs right on the first 340 samples, title on the first 320: fusion wins 20 samples and loses none
RIGHT = {"unimodal-image": first(240), "unimodal-title": first(320), "unimodal-description": first(280),
         f"gated-{FULL}": first(340), f"concat-{FULL}": first(340), f"late-average-{FULL}": first(320),
         "max-title+description": first(348)}


def sentence(story, key: str) -> Sentence:
    found = [s for s in story.sentences if s.key == key]
    assert found, [s.key for s in story.sentences]
    return found[0]


# --------------------------------------------------------------------------- which run


def test_the_best_run_uses_every_modality_and_the_best_overall_is_shown_too():
    story = make_story(TABLE, MODS, predictions=predictions(RIGHT))
    assert story.state == "ready"
    # a tie on top-1 between two full runs goes by name; the text-only run is better overall
    assert story.best.run == f"concat-{FULL}" and story.best_overall.run == "max-title+description"
    assert "Best run over every modality" in sentence(story, "best").text
    overall = sentence(story, "overall")
    assert "max-title+description" in overall.text and "2.0 points higher" in overall.text
    c = story.overall_vs_best
    assert c.n == N and c.difference == pytest.approx(0.02, abs=1e-12)  # 8 more samples of 400, exact counts
    assert c.low <= c.difference <= c.high and overall.page == "compare"


def test_a_tie_goes_to_the_explained_run_then_the_name():
    assert make_story(TABLE, MODS).best.run == f"concat-{FULL}"
    assert make_story(TABLE, MODS, explained=[f"gated-{FULL}"]).best.run == f"gated-{FULL}"
    # a higher top-1 wins over every tie rule
    higher = TABLE.assign(top1=np.where(TABLE["run"] == f"late-average-{FULL}", 0.86, TABLE["top1"]))
    assert make_story(higher, MODS, explained=[f"gated-{FULL}"]).best.run == f"late-average-{FULL}"


def test_without_a_run_over_every_modality_the_story_says_so():
    story = make_story(results({"unimodal-image": 0.6, "unimodal-title": 0.8}), MODS)
    assert story.state == "no-full-run" and story.best.run == "unimodal-title"
    assert [s.key for s in story.sentences] == ["best"]
    assert "No run uses every modality (Image, Title, Description) yet" in story.sentences[0].text


@pytest.mark.parametrize("table", [None, pd.DataFrame(), results({"x-image": float("nan")})])
def test_no_runs_no_sentences(table):
    story = make_story(table, MODS)
    assert story.state == "no-runs" and story.sentences == () and story.best is None


# --------------------------------------------------------------------------- what fusion gains


def test_a_clear_fusion_gain_with_its_paired_interval():
    story = make_story(TABLE, MODS, predictions=predictions(RIGHT))
    gain = story.gain
    assert (gain.first.run, gain.second.run) == (f"concat-{FULL}", "unimodal-title")
    assert gain.difference == pytest.approx(0.05, abs=1e-12) and gain.n == N  # 20 of 400, exact counts
    assert gain.clear and gain.low > 0 and gain.method == "paired bootstrap"
    text = sentence(story, "gain").text
    assert "5.0 points over Title alone" in text and "paired bootstrap over 400 test samples" in text
    assert "No clear gain" not in text


def test_no_clear_gain_when_the_interval_includes_zero():
    # fusion right on 6 samples title misses and wrong on 4 it gets: +0.5 points, within noise
    right = {**RIGHT, f"concat-{FULL}": first(320) & ~first(4, 316) | first(6, 320)}
    table = TABLE.assign(top1=np.where(TABLE["run"] == f"concat-{FULL}", 0.805, TABLE["top1"]))
    table = table[table["run"] != f"gated-{FULL}"]
    story = make_story(table, MODS, predictions=predictions(right))
    assert story.gain.difference == pytest.approx(0.005, abs=1e-12)
    assert story.gain.low < 0 < story.gain.high and not story.gain.clear
    text = sentence(story, "gain").text
    assert text.startswith("No clear gain from fusion") and "interval includes 0" in text


def test_a_fusion_loss_is_said_as_a_loss():
    right = {**RIGHT, f"concat-{FULL}": first(280), f"gated-{FULL}": first(270), f"late-average-{FULL}": first(260)}
    table = TABLE.assign(top1=TABLE["run"].map({f"concat-{FULL}": 0.70, f"gated-{FULL}": 0.675,
                                                f"late-average-{FULL}": 0.65}).fillna(TABLE["top1"]))
    story = make_story(table, MODS, predictions=predictions(right))
    assert story.gain.difference == pytest.approx(-0.1, abs=1e-12) and story.gain.high < 0
    assert "10.0 points below Title alone: fusion loses here" in sentence(story, "gain").text


def test_without_predictions_the_gain_has_no_interval():
    story = make_story(TABLE, MODS)  # no predictions callable
    assert story.gain.difference == pytest.approx(0.05) and not story.gain.known
    assert "could not be paired" in sentence(story, "gain").text


# --------------------------------------------------------------------------- which fusion method


def test_fusion_methods_ranked_by_their_best_run():
    story = make_story(TABLE, MODS, predictions=predictions(RIGHT))
    assert [r.fusion for r in story.fusion_ranking] == ["concat", "gated", "late-average"]
    text = sentence(story, "fusion").text
    assert "tied on top-1 with gated" in text and "3 methods" in text  # the same top-1: no winner claimed
    right = {**RIGHT, f"gated-{FULL}": first(300)}
    table = TABLE.assign(top1=np.where(TABLE["run"] == f"gated-{FULL}", 0.75, TABLE["top1"]))
    story = make_story(table, MODS, predictions=predictions(right))
    text = sentence(story, "fusion").text
    assert "concat (intermediate) wins" in text and "is clear" in text  # 40 of 400 samples, all one way


# --------------------------------------------------------------------------- which modality


def shares(n: int, image: float = 0.6, flat: int = 0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    img = np.clip(image + rng.normal(0, 0.05, n), 0, 1)
    title = (1 - img) * 0.7
    return pd.DataFrame({"id": [f"s{i:03d}" for i in range(n)], "share_image": img, "share_title": title,
                         "share_description": 1 - img - title, "flat": [i < flat for i in range(n)]})


def test_which_modality_matters_most_with_its_interval_and_n():
    frame = shares(200, image=0.62, flat=5)
    story = make_story(TABLE, MODS, predictions=predictions(RIGHT), shares=lambda run: frame)
    s = story.shares
    assert s.run == f"concat-{FULL}" and s.top.modality == "image"
    assert s.n_explained == 195 and s.n_flat == 5 and s.top.n == 195  # flat predictions left out
    kept = frame["share_image"].to_numpy()[5:]
    assert s.top.mean == pytest.approx(kept.mean(), abs=1e-12) and s.top.low < s.top.mean < s.top.high
    # correctness from the run's predictions: the first 340 samples are right
    assert (s.top.n_correct, s.top.n_incorrect) == (195, 0)
    text = sentence(story, "modality").text
    assert text.startswith("Image drives 62 % of the prediction") and "n = 195" in text
    assert "5 prediction(s) that barely depend on their inputs" in text and "rough estimate" not in text
    assert "cannot be compared yet" in sentence(story, "errors").text
    assert (sentence(story, "modality").page, sentence(story, "errors").page) == ("contributions", "misclassifications")
    assert sentence(story, "modality").run == sentence(story, "errors").run == f"concat-{FULL}"  # the link shows it


def test_shares_of_correct_and_wrong_predictions_and_few_samples():
    frame = shares(N)
    frame.loc[340:, "share_image"] = 0.9  # the wrong predictions lean on the image
    frame.loc[340:, "share_title"] = 0.05
    frame.loc[340:, "share_description"] = 0.05
    story = make_story(TABLE, MODS, predictions=predictions(RIGHT), shares=lambda run: frame)
    top = story.shares.top
    assert (top.n_correct, top.n_incorrect) == (340, 60)
    assert top.mean_incorrect == pytest.approx(0.9, abs=1e-12) and top.mean_correct < 0.7
    text = sentence(story, "errors").text
    assert text.startswith("In wrong predictions Image's share is 90 %") and "n = 60" in text and "n = 340" in text
    few = make_story(TABLE, MODS, predictions=predictions(RIGHT), shares=lambda run: shares(FEW_SAMPLES - 10))
    assert f"only {FEW_SAMPLES - 10} samples, a rough estimate" in sentence(few, "modality").text


def test_not_explained_yet_and_damaged_explanations():
    story = make_story(TABLE, MODS, shares=lambda run: None, explain_command=lambda run: f"fusionlens explain x/{run}")
    text = sentence(story, "modality")
    assert "not explained yet" in text.text and f"fusionlens explain x/concat-{FULL}" in text.text
    assert ("code", f"fusionlens explain x/concat-{FULL}") in text.parts

    def damaged(run):
        raise BundleError("explanations/samples-0.parquet is damaged", fix="run the explain command again")

    text = sentence(make_story(TABLE, MODS, shares=damaged), "modality").text
    assert "cannot be read" in text and "damaged" in text and "not explained yet" not in text


# --------------------------------------------------------------------------- rendering


def test_sentences_escape_names_in_markdown_and_html():
    s = Sentence("x", "compare", (("text", "Class <b>*a*</b> costs $5: "), ("name", "run`1"), ("strong", "3 %")))
    assert s.text == "Class <b>*a*</b> costs $5: run`13 %"
    assert s.html() == "Class &lt;b&gt;*a*&lt;/b&gt; costs $5: <code>run`1</code><strong>3 %</strong>"
    md = s.markdown()
    assert "\\<b\\>\\*a\\*\\</b\\>" in md and "\\$5\\:" in md and "`run1`" in md and "**3 %**" in md
    # spaces stay outside the bold markers (markdown would print "** text **" as it is)
    assert Sentence("x", "compare", (("strong", "No gain: "), ("text", "x"))).markdown() == "**No gain\\:** x"


def test_page_titles_are_the_dashboards():
    pytest.importorskip("streamlit")
    from ui.context import PAGE_BY_KEY

    assert {k: PAGE_BY_KEY[k].title for k in PAGE_TITLES} == PAGE_TITLES
