"""How ratios are written as percentages."""

import math

import pytest

from attrib.formats import percent


@pytest.mark.parametrize("value, digits, written", [
    (0.0064, 2, "0.64%"), (0.05, 1, "5.0%"), (1.0, 2, "100.00%"), (-3.0, 2, "-300.00%"), (99.99, 2, "9999.00%"),
    (728.4242, 2, "7.28e+04%"), (1.29e26, 1, "1.29e+28%"), (-5e3, 2, "-5e+05%"), (math.inf, 2, "inf%"),
    (math.nan, 2, "nan%")])
def test_percent_keeps_small_ratios_fixed_and_writes_huge_ones_in_three_digits(value, digits, written):
    assert percent(value, digits) == written
