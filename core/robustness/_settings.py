"""What a robustness table computes (:class:`RobustnessSettings`), and the CLI flags made from it."""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from core.errors import ConfigError
from core.io import stable_hash
from core.robustness._noise import check_level, noise_levels

#: The missing-at-random rate of the issue's example: 70 % of samples lose one or more modalities.
DEFAULT_MISSING_RATES = (0.7,)
#: Levels at which the explanations of perturbed inputs are computed (share vs noise).
DEFAULT_SHARE_LEVELS = (0.0, 0.5, 1.0)


def _setting(default: Any, help: str, *, flag: str | None = None, metavar: str | None = None, **kw: Any) -> Any:
    return field(default=default, metadata={"help": help, "flag": flag, "metavar": metavar}, **kw)


@dataclass(frozen=True)
class RobustnessSettings:
    """Everything that decides a run's robustness table; :meth:`hash` names it.

    ``samples``: test samples used at most (a seeded subsample, the same for every run);
    ``levels``: noise levels from 0 to 1; ``missing_rates``: missing-at-random rates;
    ``modalities``: only these modalities' noise sweeps (None: every one of the run's);
    ``share_samples`` x ``share_levels``: explanations of perturbed inputs (one run per experiment;
    0 samples: none).
    """

    samples: int = _setting(500, "test samples used at most (seeded subsample)", metavar="N")
    levels: int = _setting(11, "noise levels of each sweep, 0 to 1", metavar="L")
    missing_rates: tuple[float, ...] = _setting(DEFAULT_MISSING_RATES, "missing-at-random rate per sample "
                                                "(repeatable)", flag="--missing-rate", metavar="R")
    seed: int = _setting(0, "seeds the subsample, the noise and the missing tables", metavar="S")
    modalities: tuple[str, ...] | None = _setting(None, "only this modality's noise sweeps (repeatable)",
                                                  flag="--modality", metavar="NAME")
    share_samples: int = _setting(3, "samples whose explanations are recomputed on perturbed inputs (0: none)",
                                  metavar="K")
    share_levels: tuple[float, ...] = _setting(DEFAULT_SHARE_LEVELS, "noise levels of those explanations "
                                               "(repeatable)", flag="--share-level", metavar="LEVEL")

    def __post_init__(self) -> None:
        for name, low in (("samples", 1), ("levels", 2), ("seed", 0), ("share_samples", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ConfigError(f"{name}={value!r} is not valid", fix=f"pass an integer {name} >= {low}")
            object.__setattr__(self, name, int(value))
        noise_levels(self.levels)
        object.__setattr__(self, "missing_rates", tuple(check_level(r) for r in self.missing_rates))
        object.__setattr__(self, "share_levels", tuple(sorted({check_level(v) for v in self.share_levels})))
        if self.modalities is not None:
            object.__setattr__(self, "modalities", tuple(str(m) for m in self.modalities))

    @property
    def level_values(self) -> list[float]:
        return noise_levels(self.levels)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}

    def hash(self) -> str:
        return stable_hash(self.as_dict(), 12)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "RobustnessSettings":
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in names}
        return cls(**kw)


def add_robustness_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per field of :class:`RobustnessSettings` (tuples repeat the flag)."""
    for f in dataclasses.fields(RobustnessSettings):
        flag = f.metadata.get("flag") or f"--{f.name.replace('_', '-')}"
        default = f.default
        if f.name == "modalities":
            parser.add_argument(flag, dest=f.name, action="append", metavar=f.metadata.get("metavar"),
                                help=f.metadata["help"])
        elif isinstance(default, tuple):
            parser.add_argument(flag, dest=f.name, action="append", type=float, metavar=f.metadata.get("metavar"),
                                help=f"{f.metadata['help']} (default: {', '.join(f'{v:g}' for v in default)})")
        else:
            parser.add_argument(flag, dest=f.name, type=type(default), default=default,
                                metavar=f.metadata.get("metavar"), help=f"{f.metadata['help']} (default: {default})")


def robustness_settings_from_args(args: argparse.Namespace) -> RobustnessSettings:
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(RobustnessSettings)
              if getattr(args, f.name, None) is not None}
    return RobustnessSettings.from_dict(values)


def settings_argv(settings: RobustnessSettings | None) -> list[str]:
    """The flags that recompute with ``settings`` (only those that differ from the defaults)."""
    if settings is None:
        return []
    argv: list[str] = []
    default = RobustnessSettings()
    for f in dataclasses.fields(RobustnessSettings):
        value = getattr(settings, f.name)
        if value == getattr(default, f.name) or value is None:
            continue
        flag = f.metadata.get("flag") or f"--{f.name.replace('_', '-')}"
        for v in value if isinstance(value, tuple) else (value,):
            argv += [flag, f"{v:g}" if isinstance(v, float) else str(v)]
    return argv
