"""Numbers as a planner reads them: engineering units (6.75 kW, 25 MW, 0.7 GWh, 3.55 k tok/s,
$1.2M), via quantiphy (SI prefixes), and the scale of a chart axis.

Every helper returns ``"n/a"`` for ``None`` or NaN, so a missing figure never prints as
``nan`` or ``6.75e+03``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from quantiphy import Quantity

PREFIXES = {-12: "p", -9: "n", -6: "µ", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T"}
NA = "n/a"


def _bad(x: Any) -> bool:
    try:
        return x is None or not math.isfinite(float(x))
    except (TypeError, ValueError):
        return True


def eng(x: Any, unit: str, digits: int = 3) -> str:
    """``eng(6750, "W")`` -> ``"6.75 kW"``: SI prefix, ``digits`` significant digits."""
    if _bad(x):
        return NA
    return Quantity(float(x), unit).render(prec=max(digits - 1, 0), strip_zeros=True)


def power(x_w: Any) -> str:
    """W -> ``"6.75 kW"``, ``"25 MW"``."""
    return eng(x_w, "W")


def energy_wh(x_wh: Any) -> str:
    """Wh -> ``"163 kWh"``, ``"0.697 GWh"`` is ``"697 MWh"``."""
    return eng(x_wh, "Wh")


def gwh(x_gwh: Any, digits: int = 3) -> str:
    """Energy given in GWh: kept in GWh from 0.01 GWh (``"0.697 GWh"``), else with the prefix
    that reads best (``"208 kWh"``)."""
    if _bad(x_gwh):
        return NA
    x = float(x_gwh)
    return f"{x:.{digits}g} GWh" if abs(x) >= 0.01 else eng(x * 1e9, "Wh", digits)


def tokens_per_s(x: Any) -> str:
    """``3550`` -> ``"3.55 k tok/s"``."""
    if _bad(x):
        return NA
    text = Quantity(float(x)).render(prec=2, strip_zeros=True)
    num = text.rstrip("kMGTmµnp")
    prefix = text[len(num):]
    return f"{num} {prefix} tok/s".replace("  ", " ")


def money(x_usd: Any, digits: int = 3) -> str:
    """``1234567`` -> ``"$1.23M"``; below $1000 as plain dollars and cents (``"$12.5"``)."""
    if _bad(x_usd):
        return NA
    x = float(x_usd)
    if abs(x) < 1000:
        return f"${x:.{digits}g}"
    return Quantity(x, "$").render(prec=max(digits - 1, 0), strip_zeros=True)


def count(x: Any) -> str:
    """``3070`` -> ``"3,070"``; ``1e9`` -> ``"1 billion"``."""
    if _bad(x):
        return NA
    x = float(x)
    for size, word in ((1e12, "trillion"), (1e9, "billion"), (1e6, "million")):
        if abs(x) >= size:
            return f"{x / size:.3g} {word}"
    return f"{x:,.0f}" if x == round(x) else f"{x:,.3g}"


def pct(x: Any, digits: int = 1) -> str:
    """A fraction as a percentage: ``0.992`` -> ``"99.2 %"``."""
    return NA if _bad(x) else f"{100 * float(x):.{digits}f} %"


def seconds(x_s: Any) -> str:
    """``0.0123`` -> ``"12.3 ms"``, ``2.5`` -> ``"2.5 s"``."""
    return eng(x_s, "s")


def axis_scale(values: Iterable[Any], unit: str) -> tuple[float, str]:
    """Factor and prefixed unit for a chart axis whose largest value is ``max(|values|)``:
    ``axis_scale([25e6], "W")`` -> ``(1e-6, "MW")``; plot ``values * factor``."""
    finite = [abs(float(v)) for v in values if not _bad(v)]
    top = max(finite, default=0.0)
    if top <= 0:
        return 1.0, unit
    exp = int(math.floor(math.log10(top) / 3.0) * 3)
    exp = min(max(exp, min(PREFIXES)), max(PREFIXES))
    return 10.0 ** -exp, f"{PREFIXES[exp]}{unit}"
