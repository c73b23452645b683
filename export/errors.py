"""Errors raised by export: bad checkpoints, bad options, and hardware-profile violations."""
from __future__ import annotations

from dataclasses import dataclass


class ExportError(ValueError):
    """The checkpoint or an option cannot be exported (the message says what to do)."""


@dataclass(frozen=True)
class Violation:
    """One way a network breaks a hardware limit."""

    layer: str  # layer name, or "network" / "input" for whole-network limits
    key: str  # the profile limit key, e.g. "max_delay"
    value: float  # what the network needs
    limit: float  # what the profile allows
    detail: str = ""

    def __str__(self) -> str:
        extra = f" ({self.detail})" if self.detail else ""
        return f"{self.layer}: {self.key} = {self.value} exceeds limit {self.limit}{extra}"

    def to_dict(self) -> dict:
        return {"layer": self.layer, "key": self.key, "value": self.value,
                "limit": self.limit, "detail": self.detail}


class ProfileViolation(ExportError):
    """The network does not fit the hardware profile; `violations` lists every breach."""

    def __init__(self, profile: str, violations: list[Violation]):
        self.profile = profile
        self.violations = list(violations)
        lines = "\n".join(f"  - {v}" for v in self.violations)
        super().__init__(f"network does not fit hardware profile {profile!r} "
                         f"({len(self.violations)} violation(s)); nothing was written:\n{lines}")
