"""Errors raised by export: bad checkpoints, bad options, and hardware-profile violations."""
from __future__ import annotations

from deployed.limits import Violation, next_step


class ExportError(ValueError):
    """The checkpoint or an option cannot be exported (the message says what to do)."""


class ProfileViolation(ExportError):
    """The network does not fit the hardware profile; `violations` lists every breach."""

    def __init__(self, profile: str, violations: list[Violation]):
        self.profile = profile
        self.violations = list(violations)
        lines = "\n".join(f"  - {v}" + (f"\n    fix: {v.fix}" if v.fix else "")
                          for v in self.violations)
        super().__init__(f"network does not fit hardware profile {profile!r} "
                         f"({len(self.violations)} violation(s)); nothing was written:\n{lines}"
                         f"\n{next_step(self.violations)}")
