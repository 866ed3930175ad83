"""Small named registries for extension points (embedders, arms, metrics, probe sets, presets)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from advisor.core.errors import AdvisorError, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object table; unknown names raise AdvisorError with the closest match.

    >>> r = Registry("embedder"); _ = r.register("hashing")(object)
    >>> sorted(r.names())
    ['hashing']
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise AdvisorError(
                f"unknown {self.kind} '{name}'{did_you_mean(name, self._items)}; "
                f"known: {', '.join(sorted(self._items))}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items
