"""The training plots' smoother (studio.workspace.metrics: debiased EMA, NaNs skipped) on values worked out
by hand, and the incremental Smoother against the same numbers."""

from __future__ import annotations

import math

import numpy as np

from studio.workspace.metrics import Smoother, ema

NAN = math.nan
# weight 0.5 over [4, 2, nan, 8]:
#   acc = .5*4 = 2,     norm = .5    -> 4
#   acc = 1 + 1 = 2,    norm = .75   -> 8/3
#   nan skipped                      -> 8/3
#   acc = 1 + 4 = 5,    norm = .875  -> 40/7
VALUES = np.array([4.0, 2.0, NAN, 8.0])
EXPECTED = [4.0, 8 / 3, 8 / 3, 40 / 7]


def test_ema_on_hand_computed_values():
    np.testing.assert_allclose(ema(VALUES, 0.5), EXPECTED, rtol=1e-12)


def test_ema_debiases_the_start_and_leaves_leading_nans_undefined():
    out = ema(np.array([NAN, 3.0, 3.0]), 0.9)
    assert math.isnan(out[0])
    np.testing.assert_allclose(out[1:], [3.0, 3.0], rtol=1e-12)  # a constant stays constant from the start


def test_ema_with_weight_zero_is_the_values_themselves():
    np.testing.assert_allclose(ema(np.array([5.0, 1.0, 7.0]), 0.0), [5.0, 1.0, 7.0])


def test_smoother_grows_incrementally_and_starts_over_on_truncation_or_new_weight():
    sm = Smoother(0.5)
    np.testing.assert_allclose(sm.update(VALUES[:2]), EXPECTED[:2], rtol=1e-12)
    np.testing.assert_allclose(sm.update(VALUES), EXPECTED, rtol=1e-12)
    np.testing.assert_allclose(sm.update(np.array([6.0])), [6.0])  # shorter: a new run's history
    sm.set_weight(0.0)
    np.testing.assert_allclose(sm.update(VALUES[:2]), [4.0, 2.0])
