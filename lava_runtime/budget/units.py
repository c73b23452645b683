"""One engineering format for every energy, power and time the budget prints: 11.5 mJ, 14.1 uJ,
234 ns (ASCII "u" for micro)."""
from __future__ import annotations

_PREFIXES = ((1.0, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p"), (1e-15, "f"))


def format_si(value: float | None, unit: str, digits: int = 3) -> str:
    """A value with an engineering prefix (none down to f) and `digits` significant digits:
    (1.9e-05, "s") -> "19 us"; 0 -> "0 s"; None -> "-"."""
    if value is None:
        return "-"
    if value == 0:
        return f"0 {unit}"
    mag = abs(value)
    scale, prefix = next(((s, p) for s, p in _PREFIXES if mag >= s * (1 - 0.5 * 10 ** -digits)),
                         _PREFIXES[-1])
    return f"{value / scale:.{digits}g} {prefix}{unit}"
