"""One engineering format for every energy, power and time the budget prints: 11.5 mJ, 14.1 uJ,
234 ns (ASCII "u" for micro); and one for operation counts: 75.2k, 163k, 1.2M."""
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


_COUNT_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def format_count(value: float | None, digits: int = 3) -> str:
    """A count (operations per sample) with `digits` significant digits and a k / M / G / T
    multiplier, the same format at every size: 75220.5 -> "75.2k", 163200 -> "163k",
    512 -> "512", 0.25 -> "0.25"; None -> "-"."""
    if value is None:
        return "-"
    mag = abs(value)
    for scale, prefix in _COUNT_PREFIXES:
        if mag >= scale * (1 - 0.5 * 10 ** -digits):
            return f"{value / scale:.{digits}g}{prefix}"
    return f"{value:.{digits}g}"
