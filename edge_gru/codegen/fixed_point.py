"""C sources of a quantized GRU: ``edge_gru_weights.h/.c`` and the self-test vectors.

The weights header holds the model's dimensions and number-format constants as macros,
the source holds every tensor as a ``const`` array (flash). Kernel rows are re-ordered in
groups of four bytes ([w0, w2, w1, w3]) so the Cortex-M4 SMLAD path needs no shuffles;
the portable C path reads the same layout. Same inputs give byte-identical files.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..fixed_point.lut import LUT_POINTS, SIGMOID_LUT, TANH_LUT
from ..fixed_point.model import run_streams_q15
from ..fixed_point.scheme import PAD_ID, QuantizedGru
from .common import c_int_array, generated_header, write_text_files

WEIGHTS_H = "edge_gru_weights.h"
WEIGHTS_C = "edge_gru_weights.c"
TESTVEC_C = "edge_gru_testvec.c"
REGENERATE = "python -m edge_gru.convert --stages fixed_point --out DIR"


def group_reorder(rows: np.ndarray) -> np.ndarray:
    """``(R, n)`` rows -> the same rows with each full group of 4 stored as [0, 2, 1, 3]."""
    rows = np.asarray(rows)
    out = rows.copy()
    full = rows.shape[1] // 4 * 4
    groups = rows[:, :full].reshape(rows.shape[0], -1, 4)
    out[:, :full] = groups[:, :, [0, 2, 1, 3]].reshape(rows.shape[0], full)
    return out


UNIT_FIELDS = ("wz", "uz", "bz", "wr", "ur", "br", "wh", "bh", "uh", "bhh")


def unit_params(q: QuantizedGru) -> np.ndarray:
    """``(U, 10)`` int32: each unit's multipliers and biases, in the order the C reads them.

    Fields: z (x multiplier, h multiplier, bias), r (same), h (x multiplier, input bias,
    h multiplier, recurrent bias). One row per unit keeps one pointer in a register.
    """
    w, u, b = (np.asarray(a, np.int64).reshape(q.units, 3) for a in (q.w_mult, q.u_mult, q.bias_x))
    cols = [w[:, 0], u[:, 0], b[:, 0], w[:, 1], u[:, 1], b[:, 1], w[:, 2], b[:, 2], u[:, 2],
            np.asarray(q.bias_h, np.int64)]
    return np.stack(cols, axis=1).astype(np.int32)


def packed_table(table: np.ndarray) -> np.ndarray:
    """Table points as int32 words: value (low 16 bits) | slope to the next point << 16."""
    t = table.astype(np.int64)
    slope = np.append(np.diff(t), 0)
    assert t.min() >= 0 and slope.min() >= 0 and slope.max() < 2**15
    return (t | (slope << 16)).astype(np.int32)


def _flash_arrays(q: QuantizedGru) -> list[tuple[str, str, np.ndarray]]:
    """(name, C type, values) of every weight array, in file order."""
    return [
        ("edge_gru_emb_q", "int8_t", q.emb_q.reshape(-1)),
        ("edge_gru_emb_mult", "uint8_t", q.emb_mult),
        ("edge_gru_w_q", "int8_t", group_reorder(q.w_q).reshape(-1)),
        ("edge_gru_u_q", "int8_t", group_reorder(q.u_q).reshape(-1)),
        ("edge_gru_unit_q", "int32_t", unit_params(q).reshape(-1)),
        ("edge_gru_dense_q", "int8_t", q.dense_q),
        ("edge_gru_sigmoid_lut", "int32_t", packed_table(SIGMOID_LUT)),
        ("edge_gru_tanh_lut", "int32_t", packed_table(TANH_LUT)),
    ]


def model_crc32(q: QuantizedGru) -> int:
    """CRC-32 of every array's little-endian bytes and the scalar constants: the model's id."""
    crc = 0
    for _name, _ctype, values in _flash_arrays(q):
        little = np.ascontiguousarray(values).astype(values.dtype.newbyteorder("<"))
        crc = zlib.crc32(little.tobytes(), crc)
    scalars = np.array([q.emb_exp, q.pre_frac, q.dense_mult, q.dense_bias, q.maxlen], "<i8")
    return zlib.crc32(scalars.tobytes(), crc)


def _macros(q: QuantizedGru) -> list[tuple[str, str, str]]:
    return [
        ("EDGE_GRU_VOCAB", str(q.vocab), "embedding rows; ids outside [0, VOCAB) -> OOV_ID"),
        ("EDGE_GRU_EMBED", str(q.embed_dim), "embedding width E"),
        ("EDGE_GRU_UNITS", str(q.units), "GRU units U"),
        ("EDGE_GRU_MAXLEN", str(q.maxlen), "padded review length of training"),
        ("EDGE_GRU_RESET_AFTER", str(int(q.reset_after)), "1: Keras 3 default gate form"),
        ("EDGE_GRU_OOV_ID", str(q.oov_id), "id read for out-of-range tokens"),
        ("EDGE_GRU_PAD_ID", str(PAD_ID), "pre-padding id"),
        ("EDGE_GRU_EMB_EXP", str(q.emb_exp), "embedded token value = x * 2^-EMB_EXP"),
        ("EDGE_GRU_PRE_FRAC", str(q.pre_frac), "F: gate inputs and biases are Q(31-F).F"),
        ("EDGE_GRU_DENSE_MULT", f"((int32_t){q.dense_mult})", "dense accumulator -> Q.F"),
        ("EDGE_GRU_DENSE_BIAS", f"((int32_t){q.dense_bias})", "dense bias, Q.F"),
        ("EDGE_GRU_LUT_POINTS", str(LUT_POINTS), "sigmoid/tanh table points over [0, 8]"),
        ("EDGE_GRU_MODEL_CRC32", f"0x{model_crc32(q):08X}u", "id of these weights"),
    ]


_FORMATS = {
    "edge_gru_emb_q": "[VOCAB][EMBED] int8, per-row scale emb_mult[t] * 2^-EMB_EXP",
    "edge_gru_emb_mult": "[VOCAB] uint8 per-row multiplier",
    "edge_gru_w_q": "[3 * UNITS][EMBED] int8 kernel rows (row 3i+g = gate g of unit i)",
    "edge_gru_u_q": "[3 * UNITS][UNITS] int8 recurrent kernel rows",
    "edge_gru_unit_q": "[UNITS][10] int32 per unit: z {x mult, h mult, bias Q.F}, r {same}, "
    "h {x mult, input bias, h mult, recurrent bias}; mult: accumulator -> Q.F",
    "edge_gru_dense_q": "[UNITS] int8 dense kernel",
    "edge_gru_sigmoid_lut": "[LUT_POINTS] sigmoid(i / 32) Q0.15 | slope to i + 1 << 16",
    "edge_gru_tanh_lut": "[LUT_POINTS] tanh(i / 32) Q0.15 | slope to i + 1 << 16",
}


def weights_header(q: QuantizedGru, source: str) -> str:
    out = [generated_header("Fixed-point GRU weights: dimensions and formats.", source,
                            REGENERATE)]
    out += ["#ifndef EDGE_GRU_WEIGHTS_H", "#define EDGE_GRU_WEIGHTS_H", "",
            "#include <stdint.h>", ""]
    for name, value, doc in _macros(q):
        out.append(f"#define {name} {value} /* {doc} */")
    out.append("")
    for name, ctype, values in _flash_arrays(q):
        out.append(f"extern const {ctype} {name}[{len(values)}]; /* {_FORMATS[name]} */")
    out += ["", "#endif /* EDGE_GRU_WEIGHTS_H */", ""]
    return "\n".join(out)


def weights_source(q: QuantizedGru, source: str) -> str:
    out = [generated_header("Fixed-point GRU weights (const: placed in flash).", source,
                            REGENERATE)]
    out += [f'#include "{WEIGHTS_H}"', ""]
    for name, ctype, values in _flash_arrays(q):
        out.append(f"/* {_FORMATS[name]} */")
        out.append(c_int_array(name, ctype, values, per_line=16))
    return "\n".join(out)


def testvec_source(q: QuantizedGru, streams: Sequence[Sequence[int]], source: str) -> str:
    """Token streams and the bit-exact model's expected Q0.15 scores, for the self-tests."""
    expected = run_streams_q15(q, streams)
    lengths = [len(s) for s in streams]
    tokens = [int(t) for s in streams for t in s] or [0]
    out = [generated_header("Self-test vectors: token streams and expected scores.", source,
                            REGENERATE)]
    out += ['#include "edge_gru_testvec.h"', ""]
    out.append(f"const uint32_t edge_gru_testvec_count = {len(streams)}u;")
    out.append(f"const uint32_t edge_gru_testvec_crc32 = 0x{model_crc32(q):08X}u;")
    out.append(c_int_array("edge_gru_testvec_len", "uint16_t", lengths))
    out.append(c_int_array("edge_gru_testvec_tokens", "int32_t", tokens, per_line=12))
    out.append(c_int_array("edge_gru_testvec_expected", "int16_t", expected))
    return "\n".join(out)


def self_test_streams(q: QuantizedGru, reviews: np.ndarray, count: int = 24) -> list[list[int]]:
    """Real padded reviews plus variants exercising truncation, short input and OOV mapping."""
    streams = [[int(t) for t in row] for row in reviews[:count]]
    if streams:
        streams.append(streams[0] + streams[-1][: q.maxlen // 2])  # longer than maxlen
        streams.append([t for t in streams[1] if t != PAD_ID][:7])  # short, unpadded
        streams.append([-1, q.vocab, 2**31 - 1, -(2**31)] + streams[2][-20:])  # OOV ids
    streams.append([])  # empty review: all padding
    return streams


def write_sources(
    q: QuantizedGru, out_dir: Path, source: str, reviews: np.ndarray | None = None
) -> list[Path]:
    """Write the weights header/source (and test vectors when ``reviews`` are given)."""
    files = {WEIGHTS_H: weights_header(q, source), WEIGHTS_C: weights_source(q, source)}
    if reviews is not None:
        files[TESTVEC_C] = testvec_source(q, self_test_streams(q, reviews), source)
    return write_text_files(out_dir, files)
