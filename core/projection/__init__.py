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
``_quality``   trustworthiness of a projection, exact or estimated on a sample
``_compute``   compute one projection (:class:`Projection`)
``_store``     the stored parquet + sidecar files: keys, save, load, list
``_runs``      project runs: their embeddings, what is missing, shared ones
=============  ================================================================

Adding a method is one :class:`Projector` subclass with
``@PROJECTORS.register("name", label="Name")`` in ``_methods``.

Large inputs: t-SNE (openTSNE, scikit-learn as the fallback) and UMAP fit a
seeded sample of 20,000 points and ``transform`` the rest; trustworthiness is
exact up to 2,000 points and estimated with a 95 % interval above.

umap (and its numba compile), openTSNE and scikit-learn are imported only when a
projection is actually computed, so listing or loading projections (what a
dashboard page does) is cheap: a page view never imports umap.
"""
from __future__ import annotations

from core.projection._compute import Projection, compute_projection, data_fingerprint
from core.projection._methods import (METHOD_LABELS, METHODS, PROJECTORS, Projector, check_method, method_label,
                                      opentsne_available, resolve_params)
from core.projection._quality import (TRUST_SAMPLE, TrustEstimate, estimate_trustworthiness, trustworthiness,
                                      trustworthiness_neighbors)
from core.projection._runs import (EMBEDDINGS_FILE, PARALLEL_MAX_ROWS, ensure_projections, load_run_embeddings,
                                   project_runs, projection_workers)
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
    "estimate_trustworthiness",
    "TrustEstimate",
    "TRUST_SAMPLE",
    "opentsne_available",
    "data_fingerprint",
    "project_runs",
    "projection_workers",
    "PARALLEL_MAX_ROWS",
    "PROJECTIONS_DIR",
    "EMBEDDINGS_FILE",
]
