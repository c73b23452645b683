"""What the generated figure blocks of README.md and docs/*.md share: the block record, number
formats and line wrapping (used by ``experiments.readme_figures`` and its renderers)."""
from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass
from typing import Any, Callable

WIDTH = 100  # characters per generated prose line


@dataclass(frozen=True)
class Block:
    """One generated block: ``name`` (its markers' name), ``doc`` (the markdown file, relative to
    the repository root), ``sources`` (the JSON files it is made from, relative to the root) and
    ``render(*jsons) -> str`` (the block's text from the loaded sources, in that order)."""
    name: str
    doc: str
    sources: tuple[str, ...]
    render: Callable[..., str]


# ----------------------------------------------------------------------------- numbers

def pct(x: float, digits: int = 1, space: bool = False) -> str:
    """A fraction as a percentage: pct(0.9733, 2) -> '97.33%' ('97.33 %' with space)."""
    return f"{100 * x:.{digits}f}{' ' if space else ''}%"


def pts(x: float, digits: int = 1) -> str:
    """A signed difference in points: '+0.9', '-2.4'."""
    return f"{x:+.{digits}f}"


def sig(x: float, n: int = 3) -> str:
    """x with n significant digits, never in exponent form: 13.72 -> '13.7', 399.8 -> '400'."""
    if x == 0:
        return "0"
    decimals = max(n - 1 - math.floor(math.log10(abs(x))), 0)
    out = f"{round(x, decimals):.{decimals}f}"
    if len(out.replace("-", "").replace(".", "").lstrip("0")) > n and decimals:
        out = f"{round(x, decimals - 1):.{decimals - 1}f}"  # 9.996 rounded up to 10.00
    return out


_PREFIXES = ((1.0, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p"))


def si(x: float, unit: str, n: int = 3) -> str:
    """x (in the base unit) with an SI prefix and n significant digits: si(1.3723e-5, 'J') ->
    '13.7 uJ', si(0.0114615, 'J') -> '11.5 mJ'."""
    for factor, prefix in _PREFIXES:
        if abs(x) >= factor * (1 - 0.5 * 10 ** -n) or factor == _PREFIXES[-1][0]:
            return f"{sig(x / factor, n)} {prefix}{unit}"
    raise AssertionError("unreachable")


def sci(x: float, digits: int = 2) -> str:
    """Scientific notation as the README writes it: 487820.9 -> '4.88e5'."""
    mant, exp = f"{x:.{digits}e}".split("e")
    return f"{mant}e{int(exp)}"


def secs(x: float) -> str:
    """Seconds, whole from 10 s up, else two significant digits: 15.17 -> '15', 1.30 -> '1.3'."""
    return f"{x:.0f}" if x >= 10 else sig(x, 2)


def span(values: list[float], fmt: Callable[[float], str], sep: str = "-") -> str:
    """'lo-hi' of the formatted values (one value when both ends format alike)."""
    lo, hi = fmt(min(values)), fmt(max(values))
    return lo if lo == hi else f"{lo}{sep}{hi}"


def count_words(n: int) -> str:
    """Small counts in words, as prose writes them: 4 -> 'four'."""
    words = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
    return words[n] if 0 <= n < len(words) else str(n)


def t_interval(values: list[float]) -> tuple[float, float, float]:
    """(mean, lo, hi): the mean and its 95% Student-t interval (needs two values or more)."""
    from scipy.stats import t

    n = len(values)
    if n < 2:
        raise ValueError(f"an interval needs two values or more, got {n}")
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


# ----------------------------------------------------------------------------- text

def link(path: str) -> str:
    """A markdown link whose text is its target."""
    return f"[{path}]({path})"


def g(x: float) -> str:
    """A number as Python's %g writes it: 0.9, 0.75, 12."""
    return f"{x:g}"


def whole(x: float) -> str:
    """A number rounded to a whole: '153'."""
    return f"{x:.0f}"


def indent(text: str, pad: str = "  ") -> str:
    """Every non-empty line prefixed by ``pad`` (a block inside a list item)."""
    return "\n".join(pad + line if line else line for line in text.splitlines())


# ----------------------------------------------------------------------------- energy

PART_NAMES = {"synaptic_ops": "synaptic operations", "neuron_updates": "neuron updates",
              "routing_local": "spike routing within a core",
              "routing_cross_core": "spike routing between cores and from the input",
              "macs": "MACs", "weight_reads": "weight reads"}


def energy_sum(energy: dict[str, Any], where: str) -> float:
    """The total of a budget's ``energy_per_sample_joules``, checked against its breakdown: the
    parts must add up to the total (ValueError naming ``where`` otherwise)."""
    total, parts = energy["total"], energy["breakdown"]
    if not math.isclose(sum(parts.values()), total, rel_tol=1e-9):
        raise ValueError(f"{where}: the energy breakdown ({sum(parts.values()):.6g} J) does not "
                         f"add up to its total ({total:.6g} J); rerun the command that wrote it")
    return total


def energy_parts(energy: dict[str, Any], where: str, n: int = 3) -> str:
    """'1.11 uJ synaptic operations + 0.611 uJ neuron updates + ...' (every part of the
    breakdown, largest first), then what is not counted, with the reason."""
    energy_sum(energy, where)
    parts = sorted(energy["breakdown"].items(), key=lambda kv: -kv[1])
    text = " + ".join(f"{si(v, 'J', n)} {PART_NAMES.get(k, k.replace('_', ' '))}"
                      for k, v in parts)
    missing = energy.get("not_counted") or {}
    if missing:
        text += "; not counted: " + "; ".join(f"{k.replace('_', ' ')} ({why})"
                                              for k, why in missing.items())
    return text


# ----------------------------------------------------------------------------- lines

_KEEP = "\x00"  # a space that wrapping must not break
_STARTS_BLOCK = re.compile(r"^(?:[-+*] |\d+[.)] |#|>|\|)")


def wrap(text: str, first: str = "", rest: str = "") -> str:
    """Text filled to WIDTH columns, first line prefixed by ``first`` (e.g. '- '), the others by
    ``rest``. Refuses a continuation line that markdown would read as a new list item, heading,
    quote or table row."""
    # keep '95.0 %' and short code spans such as `--lanes 1` on one line
    text = re.sub(r"`[^`]*`", lambda m: m.group(0).replace(" ", _KEEP)
                  if len(m.group(0)) <= 32 else m.group(0), text)
    text = text.replace(" %", _KEEP + "%")
    out = textwrap.fill(text, WIDTH, initial_indent=first, subsequent_indent=rest,
                        break_long_words=False, break_on_hyphens=False).replace(_KEEP, " ")
    for line in out.splitlines()[1:]:
        if _STARTS_BLOCK.match(line[len(rest):]):
            raise ValueError(f"wrapped line would start a markdown block: {line!r}; reword the "
                             "renderer's sentence")
    return out


def bullet(text: str, level: int = 0) -> str:
    """A markdown list item, wrapped."""
    pad = "  " * level
    return wrap(text, pad + "- ", pad + "  ")


def table(head: list[str], rows: list[list[str]], align: list[str] | None = None) -> str:
    """A markdown table; ``align`` per column: '' (default) or 'r'."""
    align = align or [""] * len(head)
    rule = ["---:" if a == "r" else "---" for a in align]
    return "\n".join("| " + " | ".join(r) + " |" for r in [head, rule, *rows])


def png_bytes(fig) -> bytes:
    """A matplotlib figure as PNG bytes without a timestamp (the same bytes each run); closes
    the figure."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
