"""How numbers are written for people, in the terminal, warnings, records' reasons and reports alike."""

from __future__ import annotations

LARGE = 100.0  # a ratio from which a percentage is written in powers of ten (10,000%)


def percent(value: float, digits: int = 2) -> str:
    """``value`` (a ratio) as a percentage with ``digits`` decimals; a huge one, as a completeness gap where F
    barely changes along the path, in three significant digits (``1.29e+26%``) rather than 29 of them."""
    if abs(value) < LARGE or value != value:
        return f"{value:.{digits}%}"
    return f"{100 * value:.3g}%"
