"""lava_runtime.budget.text.format_energy: one engineering format for energies (J)."""
from __future__ import annotations

import pytest

from lava_runtime.budget.text import format_energy


@pytest.mark.parametrize("joules, text", [
    (0.0115, "11.5 mJ"), (1.41e-05, "14.1 uJ"), (9.8e-08, "98 nJ"), (2.46e-08, "24.6 nJ"),
    (1.0, "1 J"), (12.3, "12.3 J"), (4.2e-12, "4.2 pJ"), (0.0, "0 J"), (None, "-"),
    (9.9996e-07, "1 uJ"),  # rounds up into the next prefix instead of "1e+03 nJ"
])
def test_energy_in_engineering_units(joules, text):
    assert format_energy(joules) == text
