"""Explanations (MM-SHAP)."""
from core.explain._shapley import ShapleyValues, group_shapley_values, modality_shares, shapley_values
