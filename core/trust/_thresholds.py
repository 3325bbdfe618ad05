"""The numbers that turn a trust check's measurements into pass / warn / fail (``docs/TRUST.md``).

Every threshold is a named constant here, so the CLI, ``trust.json`` (which
records the values it was judged with) and the documentation name the same
numbers.
"""
from __future__ import annotations

from typing import Any

#: Samples re-explained by the randomisation check (``--samples``), and explained in each
#: controlled run.
DEFAULT_SAMPLES = 8
#: Samples re-explained with a 10x budget by the estimator check (``--estimator-samples``).
DEFAULT_ESTIMATOR_SAMPLES = 4
#: Seconds the randomisation and estimator checks may take together (``--seconds``): past two thirds
#: of it the randomisation check starts no new sample once it has 3, past all of it the estimator
#: check none once it has 1, so a run whose explanations are slow (video) still checks in about a
#: minute; ``n`` says how many samples each result rests on.
DEFAULT_SECONDS = 60.0

# --------------------------------------------------------------------------- 1. randomisation
#: Median Spearman correlation of |phi| maps (trained vs head and encoders re-initialised) below
#: which the explanations depend on the weights: pass. The issue measured 0.12 on RGB-D runs.
RANDOMISATION_PASS = 0.5
#: At or above this median the explanations barely changed when every weight was replaced: fail
#: (between the two: warn). Also a warn when re-initialising the head alone leaves the maps
#: this similar: the explanation ignores the fusion head.
RANDOMISATION_FAIL = 0.8

# --------------------------------------------------------------------------- 2. designed reliance
#: Fewer explained samples than this in either reliance group: the numbers are shown, but warn "too few".
RELIANCE_MIN_PER_GROUP = 20
#: A variant (or reliance value) enters the ranking with at least this many explained samples.
RELIANCE_MIN_PER_VARIANT = 3
#: Spearman correlation of per-variant mean shares with the documented order needed to pass.
RELIANCE_RANK_PASS = 0.5
#: Bootstrap resamples of the reliance difference (seeded by ``--seed``).
RELIANCE_BOOTSTRAP = 2000

# --------------------------------------------------------------------------- 3. controlled variant
#: The shuffled modality's mean share must fall below this fraction of the uniform share 1/M
#: (M modalities) to pass: 0.25 for two modalities, 0.17 for three. Below 1/M: warn; else fail.
CONTROLLED_PASS_FRACTION = 0.5

# --------------------------------------------------------------------------- 4. estimator error
#: Budget of the reference estimate, as a multiple of the stored explanation's.
ESTIMATOR_BUDGET_FACTOR = 10
#: Mean |share - reference share| that passes (the text + image benchmark's 0.018), and that fails.
ESTIMATOR_SHARE_ERROR_PASS = 0.02
ESTIMATOR_SHARE_ERROR_FAIL = 0.05
#: Fraction of |phi - phi_ref| within 1.96 standard errors (ideal 0.95) that passes, and below which it fails.
ESTIMATOR_COVERAGE_PASS = 0.8
ESTIMATOR_COVERAGE_FAIL = 0.5

# --------------------------------------------------------------------------- 5. shares summary
#: More than this fraction of such predictions among the explained ones: warn.
LOW_DEPENDENCE_WARN_FRACTION = 0.1


def thresholds() -> dict[str, Any]:
    """Every threshold by name (recorded in ``trust.json``)."""
    return {name: value for name, value in globals().items()
            if name.isupper() and isinstance(value, (int, float)) and not name.startswith("DEFAULT_")}
