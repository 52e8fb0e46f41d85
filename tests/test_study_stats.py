"""study/stats.py: Student-t intervals over seeds, paired differences, and verdicts decided by intervals."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_cnn.study.stats import NO, NOISE, YES, Interval, mean_interval, paired_interval, t_quantile_975

values = st.lists(st.floats(-1, 1, allow_nan=False), min_size=2, max_size=8)


def test_identical_seeds_give_an_interval_of_zero_width() -> None:
    i = mean_interval([0.8, 0.8, 0.8])
    assert i.mean == pytest.approx(0.8) and i.half_width == 0 and i.low == i.high == pytest.approx(0.8)
    assert i.verdict() == YES  # 0.8 > 0 with no spread at all
    same = paired_interval([0.7, 0.9, 0.8], [0.7, 0.9, 0.8])
    assert (same.mean, same.half_width, same.verdict()) == (0, 0, NOISE)  # no difference is no verdict


def test_interval_by_hand() -> None:
    """[1, 2, 3]: mean 2, sample sd 1, so the half-width is t(0.975, 2) / √3 = 4.3027 / 1.732."""
    i = mean_interval([1.0, 2.0, 3.0])
    assert i.mean == 2 and i.half_width == pytest.approx(4.3027 / math.sqrt(3))
    assert i.values == (1.0, 2.0, 3.0) and i.n == 3
    two = mean_interval([0.0, 1.0])  # sd 1/√2, t(0.975, 1) = 12.706: the interval of two seeds is wide
    assert two.half_width == pytest.approx(12.7062 * (1 / math.sqrt(2)) / math.sqrt(2))


def test_t_quantiles() -> None:
    assert t_quantile_975(1) == pytest.approx(12.706, abs=1e-3)
    assert t_quantile_975(2) == pytest.approx(4.303, abs=1e-3)
    assert t_quantile_975(30) == pytest.approx(2.042, abs=1e-3)
    assert t_quantile_975(10_000) == pytest.approx(1.960, abs=1e-3)
    with pytest.raises(ValueError, match="at least 1"):
        t_quantile_975(0)


def test_t_quantiles_match_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 5, 10, 29, 30, 31, 45, 100, 1000):
        assert t_quantile_975(df) == pytest.approx(stats.t.ppf(0.975, df), abs=1e-4), df


def test_paired_interval_cancels_what_the_seeds_share() -> None:
    """Two models that differ by exactly 2 points at every seed: the seeds' own spread is large, the difference's 0."""
    a, b = [0.70, 0.80, 0.90], [0.68, 0.78, 0.88]
    assert mean_interval(a).half_width > 0.2
    d = paired_interval(a, b)
    assert d.mean == pytest.approx(0.02) and d.half_width == pytest.approx(0, abs=1e-12) and d.verdict() == YES
    assert paired_interval(b, a).verdict() == NO
    with pytest.raises(ValueError, match="one value per seed"):
        paired_interval([1.0, 2.0], [1.0])


def test_verdicts_follow_the_interval_not_the_mean() -> None:
    assert Interval(0.03, 0.01, (0.0,)).verdict() == YES
    assert Interval(-0.03, 0.01, (0.0,)).verdict() == NO
    assert Interval(0.03, 0.05, (0.0,)).verdict() == NOISE  # a positive mean inside the noise is no "yes"


def test_one_seed_has_no_interval() -> None:
    i = mean_interval([0.9])
    assert i.half_width == math.inf and i.verdict() == NOISE
    assert i.to_json() == {"mean": 0.9, "half_width": None, "low": None, "high": None, "values": [0.9]}
    with pytest.raises(ValueError, match="no values"):
        mean_interval([])


def test_negation_reads_a_drop_as_a_change() -> None:
    i = -mean_interval([0.1, 0.2, 0.3])
    assert i.mean == pytest.approx(-0.2) and i.values == (-0.1, -0.2, -0.3)
    assert i.half_width == pytest.approx(mean_interval([0.1, 0.2, 0.3]).half_width)


@settings(max_examples=40, deadline=None)
@given(values)
def test_interval_properties(xs: list[float]) -> None:
    i = mean_interval(xs)
    assert i.low <= i.mean <= i.high
    shifted = mean_interval([x + 1 for x in xs])  # a constant moves the mean, not the width
    assert shifted.mean == pytest.approx(i.mean + 1) and shifted.half_width == pytest.approx(i.half_width, abs=1e-9)
    assert paired_interval(xs, xs).half_width == 0
