"""2-D projections (PCA, t-SNE, UMAP) of a run's embeddings, stored with the run.

:func:`compute_projection` turns an (n, d) array into a :class:`Projection`
(coordinates plus the resolved parameters, seed, trustworthiness and time
taken). Projections live under ``<run_dir>/projections/`` as
``<embedding>__<method>__<key>.parquet`` (columns ``id``, ``x``, ``y``) with a
JSON sidecar; ``key`` hashes the resolved parameters and the seed, so a
projection is found again from the same request and never recomputed
(:func:`ensure_projections` and :func:`project_runs` are resumable).

The package by job (private modules; import from here, never from them):

=============  ================================================================
``_methods``   the methods: one :class:`Projector` each in :data:`PROJECTORS`
``_quality``   trustworthiness of a projection
``_compute``   compute one projection (:class:`Projection`)
``_store``     the stored parquet + sidecar files: keys, save, load, list
``_runs``      project runs: their embeddings, what is missing, shared ones
=============  ================================================================

Adding a method is one :class:`Projector` subclass with
``@PROJECTORS.register("name", label="Name")`` in ``_methods``.

umap (and its numba compile) and scikit-learn are imported only when a
projection is actually computed, so listing or loading projections (what a
dashboard page does) is cheap: a page view never imports umap.
"""
from __future__ import annotations

from core.projection._compute import Projection, compute_projection, data_fingerprint
from core.projection._methods import (METHOD_LABELS, METHODS, PROJECTORS, Projector, check_method, method_label,
                                      resolve_params)
from core.projection._quality import trustworthiness, trustworthiness_neighbors
from core.projection._runs import EMBEDDINGS_FILE, ensure_projections, load_run_embeddings, project_runs
from core.projection._store import (PROJECTIONS_DIR, list_projections, load_projection, projection_key,
                                    projection_path, save_projection)

__all__ = [
    "METHODS",
    "METHOD_LABELS",
    "PROJECTORS",
    "Projector",
    "Projection",
    "check_method",
    "method_label",
    "compute_projection",
    "resolve_params",
    "projection_key",
    "projection_path",
    "save_projection",
    "load_projection",
    "list_projections",
    "ensure_projections",
    "load_run_embeddings",
    "trustworthiness",
    "trustworthiness_neighbors",
    "data_fingerprint",
    "project_runs",
    "PROJECTIONS_DIR",
    "EMBEDDINGS_FILE",
]
