"""A tiny name -> factory registry (the timm pattern).

Fusion methods, encoders, maskers, modality kinds and data sources each live in
one registry, so adding one is one file plus one decorator, and tests loop over ``registry.names()``.
"""
from __future__ import annotations

from typing import Any, Callable, Generic, Iterator, TypeVar

from core.errors import ConfigError, choices, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories; ``create`` fails with the list of known names."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, Callable[..., T]] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def register(self, name: str, **meta: Any) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: ``@FUSIONS.register("concat", strategy="intermediate")``."""

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.what} {name!r} is registered twice")
            self._entries[name] = factory
            self._meta[name] = dict(meta)
            return factory

        return decorator

    def unregister(self, name: str) -> None:
        """Remove an entry (tests that register a throw-away entry clean up with this)."""
        self.get(name)
        del self._entries[name]
        del self._meta[name]

    def create(self, name: str, *args: Any, **kwargs: Any) -> T:
        return self.get(name)(*args, **kwargs)

    def get(self, name: str) -> Callable[..., T]:
        if name not in self._entries:
            known = sorted(self._entries)
            raise ConfigError(
                f"unknown {self.what} {name!r}",
                fix=f"{did_you_mean(name, known)}use one of: {choices(known)}",
            )
        return self._entries[name]

    def meta(self, name: str) -> dict[str, Any]:
        self.get(name)
        return dict(self._meta[name])

    def names(self, **where: Any) -> list[str]:
        """Registered names, optionally only those whose metadata matches ``where``."""
        return [
            n for n in self._entries
            if all(self._meta[n].get(k) == v for k, v in where.items())
        ]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)
