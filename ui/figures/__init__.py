"""Plotly figure builders of the dashboard, one module per page area.

Every builder takes plain data in the formats of ``docs/FORMATS.md`` (pandas
frames, dicts, arrays) and returns a ``go.Figure`` (or HTML for tokens); nothing
here reads files or imports streamlit, so pages stay thin and every figure is
testable. The shared look (fonts, colours, class axes, empty states) is
:mod:`ui.figures.style`.

- :mod:`ui.figures.results`: accuracy per run, per-class recall across runs (Compare);
- :mod:`ui.figures.dataset`: samples per class and split (Overview);
- :mod:`ui.figures.confusion`: confusion matrix, confused pairs, precision/recall (Misclassifications);
- :mod:`ui.figures.shares`: modality shares per class and per sample, in both meanings (MM-SHAP and
  exact), and modality interactions per class (Modality contributions, Sample explorer);
- :mod:`ui.figures.embeddings`: a 2-D projection, as points or as a density (Embeddings);
- :mod:`ui.figures.series`: a time series' channels with its segments' contributions, and its track map
  (Sample explorer);
- :mod:`ui.figures.samples`: one sample's top-5, shares, contribution overlays and column bars (Sample explorer);
- :mod:`ui.figures.blame`: which modality misled the model, per class and for one prediction (Misclassifications,
  Sample explorer);
- :mod:`ui.figures.audio`: an audio clip's log-mel spectrogram with its patches' contributions (Sample explorer);
- :mod:`ui.figures.clips`: the clip player, a sample's clips and audio playing in sync with their contributions
  (Sample explorer, report);
- :mod:`ui.figures.efficiency`: accuracy against GFLOPs with the Pareto front, an adaptive run's selection rates
  per class and one item's decision timeline (Efficiency, Sample explorer);
- :mod:`ui.figures.robustness`: accuracy vs noise level per run and degraded modality, modality shares vs noise
  level (Robustness);
- :mod:`ui.figures.slices`: each slice's error rate with its interval against the overall one (Slice finder).
"""
from __future__ import annotations

from ui.figures.audio import make_spectrogram_figure
from ui.figures.clips import AudioTrack, make_clip_player_figure
from ui.figures.blame import make_blame_class_figure, make_sample_blame_figure
from ui.figures.confusion import (
    OTHER_CLASSES,
    make_confused_pairs_figure,
    make_confusion_figure,
    make_precision_recall_figure,
)
from ui.figures.dataset import SPLIT_COLORS, make_split_counts_figure
from ui.figures.efficiency import make_decision_timeline_figure, make_pareto_figure, make_selection_rate_figure
from ui.figures.embeddings import DENSITY_MIN_POINTS, make_density_figure, make_embedding_figure
from ui.figures.results import make_per_class_heatmap_figure, make_results_bar_figure
from ui.figures.robustness import make_noise_curve_figure, make_share_noise_figure
from ui.figures.series import make_series_figure, make_track_figure
from ui.figures.samples import (
    make_column_contribution_figure,
    make_frames_overlay_figure,
    make_image_overlay_figure,
    make_sample_share_figure,
    make_topk_figure,
    token_html,
)
from ui.figures.shares import (
    SHARE_MEANINGS,
    SUBSET_COLORS,
    interaction_rows,
    make_interaction_figure,
    make_modality_share_bar_figure,
    make_sample_share_meanings_figure,
    make_share_correct_vs_incorrect_figure,
    make_share_distribution_figure,
    make_share_meanings_figure,
    output_unit,
    share_rows,
)
from ui.figures.slices import SLICE_COLORS, make_slice_figure
from ui.figures.style import (
    BASE_FONT_SIZE,
    CLASS_COLORS,
    CONTRIBUTION_COLORSCALE,
    CORRECTNESS_COLORS,
    FALLBACK_COLORS,
    MAX_FIT_WIDTH,
    MIN_CLASS_FONT_SIZE,
    MODALITY_COLORS,
    PRESENT_SCALE,
    class_colors,
    class_font_size,
    class_pitch,
    class_ticks,
    figure_scale,
    modality_color,
    modality_colors,
    scale_figure,
    scaled_figures,
    short_label,
)

__all__ = [
    "AudioTrack",
    "BASE_FONT_SIZE",
    "CLASS_COLORS",
    "CONTRIBUTION_COLORSCALE",
    "CORRECTNESS_COLORS",
    "FALLBACK_COLORS",
    "MAX_FIT_WIDTH",
    "MIN_CLASS_FONT_SIZE",
    "MODALITY_COLORS",
    "PRESENT_SCALE",
    "OTHER_CLASSES",
    "SHARE_MEANINGS",
    "SPLIT_COLORS",
    "SUBSET_COLORS",
    "class_colors",
    "class_font_size",
    "class_pitch",
    "class_ticks",
    "figure_scale",
    "scale_figure",
    "scaled_figures",
    "make_blame_class_figure",
    "make_clip_player_figure",
    "make_column_contribution_figure",
    "make_confused_pairs_figure",
    "make_confusion_figure",
    "make_decision_timeline_figure",
    "make_embedding_figure",
    "make_density_figure",
    "DENSITY_MIN_POINTS",
    "make_noise_curve_figure",
    "interaction_rows",
    "make_frames_overlay_figure",
    "make_image_overlay_figure",
    "make_interaction_figure",
    "make_modality_share_bar_figure",
    "make_pareto_figure",
    "make_per_class_heatmap_figure",
    "make_precision_recall_figure",
    "make_results_bar_figure",
    "make_sample_blame_figure",
    "make_sample_share_figure",
    "make_sample_share_meanings_figure",
    "make_selection_rate_figure",
    "make_share_correct_vs_incorrect_figure",
    "make_share_noise_figure",
    "make_slice_figure",
    "SLICE_COLORS",
    "make_share_distribution_figure",
    "make_share_meanings_figure",
    "make_spectrogram_figure",
    "make_series_figure",
    "make_split_counts_figure",
    "make_topk_figure",
    "make_track_figure",
    "modality_color",
    "modality_colors",
    "output_unit",
    "share_rows",
    "short_label",
    "token_html",
]
