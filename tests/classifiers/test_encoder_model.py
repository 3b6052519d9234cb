"""The encoder model's Winograd second convolutions against the plain window product."""

from __future__ import annotations

import numpy as np
import pytest

from guardrail.classifiers.embedded._model import (
    _CNN_DIM,
    _ORDERS,
    _PAD,
    product_flops,
    winograd,
    winograd_inputs,
    winograd_outputs,
)


def _plain(src: np.ndarray, w2: np.ndarray, order: int, left: int) -> np.ndarray:
    """Row t: src rows t + _PAD - left ... + order - 1 side by side, times w2 (float64)."""
    rows = src.shape[0] - 2 * _PAD
    start = _PAD - left
    windows = np.concatenate(
        [src[start + k : start + k + rows] for k in range(order)], axis=1
    ).astype(np.float64)
    out: np.ndarray = windows @ w2.astype(np.float64)
    return out


@pytest.mark.parametrize("branch", range(len(_ORDERS)))
@pytest.mark.parametrize("rows", [1, 2, 3, 4, 5, 7, 8, 9, 31, 100])
def test_winograd_tiles_equal_the_window_product(branch: int, rows: int) -> None:
    order, left = _ORDERS[branch]
    rng = np.random.default_rng(rows * 10 + branch)
    w2 = (rng.standard_normal((order * _CNN_DIM, _CNN_DIM)) / 16).astype(np.float32)
    src = rng.standard_normal((rows + 2 * _PAD, _CNN_DIM)).astype(np.float32)
    src[:_PAD] = 0.0
    src[-_PAD:] = 0.0
    wg = winograd(w2, order)
    assert wg.m == 9 - order
    points = winograd_inputs(src, branch, wg)
    assert points.shape == (8, -(-rows // wg.m), _CNN_DIM)
    got = winograd_outputs(np.matmul(points, wg.weight), wg, rows)
    want = _plain(src, w2, order, left)
    assert got.shape == (rows, _CNN_DIM) and got.dtype == np.float32
    # float32 Winograd with these points: errors ~1e-6 of the products' scale.
    scale = float(np.abs(want).max())
    assert float(np.abs(got - want).max()) < 2e-5 * scale


def test_winograd_leaves_out_the_rows_outside_src() -> None:
    """The last tile reaches past src: what lies there must not leak into the windows."""
    order, left = _ORDERS[2]
    rng = np.random.default_rng(7)
    w2 = rng.standard_normal((order * _CNN_DIM, _CNN_DIM)).astype(np.float32)
    big = rng.standard_normal((40, _CNN_DIM)).astype(np.float32)
    src = big[:13].copy()  # 9 rows and the pads, inside a larger buffer of non-zeros
    src[:_PAD] = src[-_PAD:] = 0.0
    wg = winograd(w2, order)
    got = winograd_outputs(np.matmul(winograd_inputs(src, 2, wg), wg.weight), wg, 9)
    np.testing.assert_allclose(got, _plain(src, w2, order, left), rtol=0, atol=1e-3)


def test_product_flops_count_the_winograd_saving() -> None:
    ids = np.arange(1000, dtype=np.int64)  # all in the tables: only the second convolutions
    plain, tiled = product_flops(ids, winograd=False), product_flops(ids, winograd=True)
    per_token = 2 * _CNN_DIM * _CNN_DIM
    assert plain == 1000 * per_token * (2 + 3 + 5)
    assert tiled == round(1000 * per_token * (8 / 7 + 8 / 6 + 8 / 4))
