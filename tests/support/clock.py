"""A clock a test moves by hand."""

from __future__ import annotations

__all__ = ["FakeClock"]


class FakeClock:
    """A ``Callable[[], float]`` clock (seconds) that only moves when told.

    Pass it wherever ssehub takes ``clock=``; move it with :meth:`advance` or by
    setting :attr:`now`.
    """

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
