"""Attention math on hand-computed cases: rollout (heads averaged, residual identity, rows renormalised,
layers multiplied in order), the mean over heads, the CSV of a shown matrix, token labels."""

from __future__ import annotations

import numpy as np

from studio.workspace.attention_math import check_shape, matrix_csv, mean_over_heads, rollout
from studio.workspace.token_labels import visible


def _probs() -> np.ndarray:
    """2 layers x 2 heads x 3 tokens. Layer 0: both heads alike (token 1 looks at 0, token 2 at 1).
    Layer 1: heads differ only on token 2 (one looks at token 0, the other at itself)."""
    layer0 = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=np.float32)
    head_a = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0]], dtype=np.float32)
    head_b = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    return np.stack([np.stack([layer0, layer0]), np.stack([head_a, head_b])])


def test_rollout_on_a_hand_computed_case():
    out = rollout(_probs())
    # Layer 0: (mean + I), rows renormalised: [2,0,0]/2, [1,1,0]/2, [0,1,1]/2.
    a0 = [[1, 0, 0], [0.5, 0.5, 0], [0, 0.5, 0.5]]
    np.testing.assert_allclose(out[0], a0, atol=1e-7)
    # Layer 1: mean row 2 = [.5, 0, .5]; + I -> [.5, 0, 1.5] / 2 = [.25, 0, .75]; rows 0, 1 stay one-hot.
    # Rolled out through both layers: A1 @ A0, row 2 = .25 * a0[0] + .75 * a0[2] = [.25, .375, .375].
    # (The other order, A0 @ A1, would give row 2 = [.125, .5, .375].)
    np.testing.assert_allclose(out[1], [[1, 0, 0], [0.5, 0.5, 0], [0.25, 0.375, 0.375]], atol=1e-7)
    assert out.dtype == np.float32 and out.shape == (2, 3, 3)


def test_rollout_of_uniform_causal_attention_on_two_tokens():
    # One layer, one head: token 1 splits evenly; + I -> [.5, 1.5] / 2 = [.25, .75].
    probs = np.array([[[[1, 0], [0.5, 0.5]]]], dtype=np.float32)
    np.testing.assert_allclose(rollout(probs)[0], [[1, 0], [0.25, 0.75]], atol=1e-7)


def test_mean_over_heads_averages_each_layer_separately():
    mean = mean_over_heads(_probs())
    assert mean.shape == (2, 3, 3)
    np.testing.assert_allclose(mean[1, 2], [0.5, 0, 0.5])
    np.testing.assert_allclose(mean[0, 2], [0, 1, 0])


def test_matrix_csv_labels_rows_and_columns_with_visible_tokens():
    text = matrix_csv(np.array([[1.0, 0.0], [0.25, 0.75]]), ["a", " \n"])
    rows = text.splitlines()
    assert rows == ["from \\ to,0:a,1:␣⏎", "0:a,1,0", "1:␣⏎,0.25,0.75"]


def test_visible_marks_whitespace_and_escapes_control_characters():
    assert visible("a b\t\r\n") == "a␣b⇥␍⏎"
    assert visible("\x01") == "\\x01"
    assert visible("") == "∅"


def test_check_shape_names_the_shape_and_token_count():
    try:
        check_shape(np.zeros((1, 1, 3, 3)), 4)
    except ValueError as exc:
        assert "[1, 1, 3, 3]" in str(exc) and "T = 4" in str(exc)
    else:
        raise AssertionError("a shape that does not fit the tokens was accepted")
