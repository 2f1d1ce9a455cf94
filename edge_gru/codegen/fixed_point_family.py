"""C sources of a quantized family model: ``edge_gru_model.h/.c`` and the self-test vectors.

Every int8 weight row is stored group-reordered ([w0, w2, w1, w3] per 4, as the seed's)
for the Cortex-M4 SMLAD path. The header holds the dimensions, formats (raw-reading
scale/offset per feature, layer fraction bits, output format) and ``extern`` declarations;
the source holds every tensor and the layer descriptors that
``firmware/src/edge_gru_family.c`` walks. Same inputs give byte-identical files.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import numpy as np

from ..fixed_point import family_model as fm
from ..fixed_point.family_lut import EXP_LUT
from ..fixed_point.family_scheme import FamilyQuant, QGru
from ..fixed_point.lut import SIGMOID_LUT, TANH_LUT
from .common import c_int_array, generated_header, write_text_files
from .fixed_point import group_reorder, packed_table

MODEL_H = "edge_gru_model.h"
MODEL_C = "edge_gru_model.c"
TESTVEC_C = "edge_gru_family_testvec.c"
REGENERATE = "python -m edge_gru.convert --stages fixed_point --out DIR"
REDUCTIONS = {None: 0, "last": 1, "mean": 2, "max": 3, "flatten": 4}
MERGES = {None: "EGF_MERGE_NONE", "concat": "EGF_MERGE_CONCAT", "sum": "EGF_MERGE_SUM",
          "mul": "EGF_MERGE_MUL", "ave": "EGF_MERGE_AVE"}
ACTS = {"linear": "EGF_ACT_LINEAR", "relu": "EGF_ACT_RELU", "tanh": "EGF_ACT_TANH",
        "sigmoid": "EGF_ACT_SIGMOID", "softmax": "EGF_ACT_SOFTMAX"}


def _interleave_rows(rows: np.ndarray, units: int) -> np.ndarray:
    """``(3u, n)`` rows in block order [z | r | h] -> unit-interleaved (row 3i+g)."""
    return rows.reshape(3, units, -1).swapaxes(0, 1).reshape(3 * units, -1)


def unit_params(g: QGru) -> np.ndarray:
    """``(u, 10)`` int32 per unit, the seed library's field order (see edge_gru_family.h)."""
    u = g.units
    w, m, b = (np.asarray(a, np.int64).reshape(3, u) for a in (g.w_mult, g.u_mult, g.bias_x))
    cols = [w[0], m[0], b[0], w[1], m[1], b[1], w[2], b[2], m[2], np.asarray(g.bias_h)]
    return np.stack(cols, axis=1).astype(np.int32)


def _directions(q: FamilyQuant) -> list[QGru]:
    return [g for r in q.recurrent for g in (r.forward, r.backward) if g is not None]


def _arrays(q: FamilyQuant) -> list[tuple[str, str, np.ndarray, str]]:
    """(name, C type, values, doc) of every constant array, in file order."""
    i = q.input
    out: list[tuple[str, str, np.ndarray, str]] = []
    if i.kind == "tokens":
        assert i.emb_q is not None and i.emb_mult is not None
        out += [("egf_emb_q", "int8_t", i.emb_q.reshape(-1), "[VOCAB][IN_DIM] int8 embedding"),
                ("egf_emb_mult", "uint8_t", i.emb_mult,
                 "[VOCAB] per-row multiplier: value = emb_q * mult * 2^-EGF_INPUT_EXP")]
    else:
        assert i.k is not None and i.raw_offset is not None and i.raw_mult is not None
        mask = i.mask_q if i.mask_q is not None else np.zeros(i.features, np.int16)
        out += [("egf_feature_frac", "uint8_t", i.k, "[F] k_f: frame x[f] is Q(15-k_f).k_f"),
                ("egf_mask_frame", "int16_t", mask, "[F] Masking frame (unused without)"),
                ("egf_pad_frame", "int16_t", fm.pad_value_frame(q), "[F] pre-padding frame"),
                ("egf_raw_offset", "int32_t", i.raw_offset, "[F] raw offset (raw units)"),
                ("egf_raw_mult", "int32_t", i.raw_mult, "[F] raw -> frame multiplier, >> 24")]
    for n, g in enumerate(_directions(q)):
        out += [(f"egf_gru{n}_w", "int8_t",
                 group_reorder(_interleave_rows(g.w_q, g.units)).reshape(-1),
                 f"{g.name}: [3 * {g.units}][{g.input_dim}] kernel rows, input x 2^-{g.in_exp}"
                 f", gate inputs Q.{g.pre_frac}, state Q0.15"),
                (f"egf_gru{n}_u", "int8_t",
                 group_reorder(_interleave_rows(g.u_q, g.units)).reshape(-1),
                 f"{g.name}: [3 * {g.units}][{g.units}] recurrent kernel rows"),
                (f"egf_gru{n}_p", "int32_t", unit_params(g).reshape(-1),
                 f"{g.name}: [{g.units}][10] multipliers and Q.{g.pre_frac} biases")]
    for n, d in enumerate(q.head):
        q15 = d.activation in ("sigmoid", "tanh", "softmax")
        if d.out_exp is None:  # the model output
            out_fmt = "out[] Q0.15" if q15 else f"out[] int32 Q.{d.pre_frac}"
        else:
            out_fmt = "int16 Q0.15" if q15 else f"int16 x 2^-{d.out_exp}"
        out += [(f"egf_dense{n}_w", "int8_t", group_reorder(d.w_q).reshape(-1),
                 f"{d.name}: [{d.w_q.shape[0]}][{d.w_q.shape[1]}] int8 rows, input x 2^-"
                 f"{d.in_exp}, {d.activation} -> {out_fmt}"),
                (f"egf_dense{n}_m", "int32_t", d.mult, f"{d.name}: multipliers to Q.{d.pre_frac}"),
                (f"egf_dense{n}_b", "int32_t", d.bias, f"{d.name}: bias Q.{d.pre_frac}")]
    # the library's SSAT clamp of a table input relies on a flat last segment
    assert SIGMOID_LUT[-1] == SIGMOID_LUT[-2] and TANH_LUT[-1] == TANH_LUT[-2]
    out += [("egf_sigmoid_lut", "int32_t", packed_table(SIGMOID_LUT),
             "sigmoid(i / 32) Q0.15 | slope << 16"),
            ("egf_tanh_lut", "int32_t", packed_table(TANH_LUT), "tanh(i / 32) Q0.15 | slope << 16"),
            ("egf_exp_lut", "int32_t", np.append(EXP_LUT, 0), "exp(-i / 32) Q0.15, trailing 0")]
    return out


def model_crc32(q: FamilyQuant) -> int:
    """CRC-32 of every array's little-endian bytes and the dimensions: the model's id."""
    crc = 0
    for _n, _t, values, _d in _arrays(q):
        crc = zlib.crc32(np.ascontiguousarray(values).astype("<i8").tobytes(), crc)
    dims = [q.input.timesteps, q.input.exp, q.outputs, fm.out_frac(q)]
    dims += [d.out_exp or 0 for d in q.head]
    return zlib.crc32(np.array(dims, "<i8").tobytes(), crc)


def _dims_in(q: FamilyQuant) -> int:
    """The GRU stack's input width: embedding dimension or features."""
    i = q.input
    return int(i.emb_q.shape[1] if i.emb_q is not None else i.features)


def _dims(q: FamilyQuant) -> dict[str, int]:
    i = q.input
    in_dim = _dims_in(q)
    last = q.recurrent[-1].output_dim
    seq_dims = [in_dim] + [r.output_dim for r in q.recurrent]
    units = [g.units for g in _directions(q)]
    stream = q.streamable
    return {
        "EGF_INPUT_TOKENS": int(i.kind == "tokens"),
        "EGF_T": i.timesteps,
        "EGF_F": i.features,
        "EGF_VOCAB": i.vocab,
        "EGF_OOV_ID": i.oov_id,
        "EGF_MASK_ZERO": int(i.mask_zero),
        "EGF_HAS_MASKING": int(i.mask_q is not None),
        "EGF_INPUT_EXP": i.exp,
        "EGF_IN_DIM": int(in_dim),
        "EGF_NUM_RECURRENT": len(q.recurrent),
        "EGF_NUM_DENSE": len(q.head),
        "EGF_MAX_UNITS": max(units),
        "EGF_STATE_TOTAL": sum(units) if stream else max(units),
        "EGF_STREAMABLE": int(stream),
        "EGF_SEQ_BUFFERS": int(not stream),
        "EGF_SEQ_DIM": max(seq_dims) if not stream else last,
        "EGF_LAST_DIM": last,
        "EGF_REDUCTION": REDUCTIONS[q.reduction],
        "EGF_HEAD_DIM": max([d.w_q.shape[0] for d in q.head] + [last]),
        "EGF_OUTPUTS": q.outputs,
        "EGF_OUT_FRAC": fm.out_frac(q),
    } | direction_constants(q)


def direction_constants(q: FamilyQuant) -> dict[str, int]:
    """``EGF_NUM_DIRS``, ``EGF_EVEN_DIMS`` (1: the input width and every direction's units
    and input_dim are even, so the state's vectors are word-aligned and the M4 loads input
    pairs with LDRD), ``EGF_ALIGNED_KERNELS`` (the GRU kernel arrays are defined
    ``EGF_WORD_ALIGNED``: rows of a multiple of 4 bytes load with LDRD) and, per GRU
    direction k (layers in order, forward then backward),
    ``EGF_DIRk_D`` (input_dim), ``_U`` (units), ``_F`` (pre_frac), ``_RA`` (reset_after):
    the library compiles one step per direction with these as constants."""
    dims = [_dims_in(q)] + [n for g in _directions(q) for n in (g.units, g.input_dim)]
    out = {"EGF_NUM_DIRS": len(_directions(q)),
           "EGF_EVEN_DIMS": int(all(n % 2 == 0 for n in dims)),
           "EGF_ALIGNED_KERNELS": 1}
    for k, g in enumerate(_directions(q)):
        out |= {f"EGF_DIR{k}_D": g.input_dim, f"EGF_DIR{k}_U": g.units,
                f"EGF_DIR{k}_F": g.pre_frac, f"EGF_DIR{k}_RA": int(g.reset_after)}
    return out


def model_header(q: FamilyQuant, source: str) -> str:
    i = q.input
    out = [generated_header(f"Fixed-point GRU family model {q.name}: dimensions and formats.",
                            source, REGENERATE)]
    out += ["#ifndef EDGE_GRU_MODEL_H", "#define EDGE_GRU_MODEL_H", "", "#include <stdint.h>", ""]
    out.append(f"/* task {q.task}, output {q.head[-1].activation}: out[k] * 2^-EGF_OUT_FRAC */")
    if i.kind == "features":
        assert i.k is not None and i.offset is not None and i.divisor is not None
        assert i.raw_frac is not None
        out.append("/* Feature f: frame x[f] = round((reading - offset) / divisor * 2^k);")
        out.append(" * raw helper input raw[f] = round(reading * 2^raw_frac).")
        for f in range(i.features):
            out.append(f" *   f{f}: offset {i.offset[f]:.9g} divisor {i.divisor[f]:.9g} "
                       f"k {int(i.k[f])} raw_frac {int(i.raw_frac[f])}")
        out.append(" */")
    for name, value in _dims(q).items():
        out.append(f"#define {name} {value}")
    out.append(f"#define EGF_MODEL_CRC32 0x{model_crc32(q):08X}u")
    out.append("")
    for name, ctype, values, doc in _arrays(q):
        out.append(f"extern const {ctype} {name}[{len(values)}]; /* {doc} */")
    out += ["", "#endif /* EDGE_GRU_MODEL_H */", ""]
    return "\n".join(out)


def _gru_init(g: QGru | None, n: int) -> str:
    if g is None:
        return "{0, 0, 0, 0, 0, 0, 0, 0}"
    return (f"{{egf_gru{n}_w, egf_gru{n}_u, egf_gru{n}_p, {g.units}, {g.input_dim}, "
            f"{g.pre_frac}, {int(g.reset_after)}, {int(g.go_backwards)}}}")


def model_source(q: FamilyQuant, source: str) -> str:
    out = [generated_header("Fixed-point GRU family weights (const: placed in flash).", source,
                            REGENERATE)]
    out += ['#include "edge_gru_family.h"', ""]
    for name, ctype, values, doc in _arrays(q):
        out.append(f"/* {doc} */")
        text = c_int_array(name, ctype, values, per_line=16)
        if re.fullmatch(r"egf_gru\d+_[wu]", name):  # rows read with LDRD: word-aligned
            text = text.replace(f"{name}[{len(values)}] = {{",
                                f"{name}[{len(values)}] EGF_WORD_ALIGNED = {{", 1)
        out.append(text)
    rows, n = [], 0
    for r in q.recurrent:
        fwd = _gru_init(r.forward, n)
        n += 1
        bwd = _gru_init(r.backward, n)
        n += r.backward is not None
        rows.append(f"    {{{fwd},\n     {bwd},\n     {MERGES[r.merge]}, "
                    f"{int(r.return_sequences)}, {r.output_dim}}}")
    out.append(f"const egf_recurrent egf_recurrent_layers[{len(rows)}] = {{\n"
               + ",\n".join(rows) + "\n};\n")
    dense = []
    for k, d in enumerate(q.head):
        shift = d.pre_frac - d.out_exp if d.out_exp is not None else 0
        dense.append(f"    {{egf_dense{k}_w, egf_dense{k}_m, egf_dense{k}_b, {d.w_q.shape[1]}, "
                     f"{d.w_q.shape[0]}, {d.pre_frac}, {ACTS[d.activation]}, {shift}}}")
    out.append(f"const egf_dense egf_dense_layers[{len(dense)}] = {{\n" + ",\n".join(dense)
               + "\n};\n")
    return "\n".join(out)


def self_test_streams(q: FamilyQuant, examples: np.ndarray) -> list[np.ndarray]:
    """Real examples plus: longer than T, short, extreme values / ids, empty."""
    streams = [np.asarray(e) for e in examples]
    t = q.input.timesteps
    if streams:
        streams.append(np.concatenate([streams[0], streams[-1][: t // 2]]))
        streams.append(streams[min(1, len(streams) - 1)][-3:])
        if q.input.kind == "tokens":
            odd = np.array([-1, q.input.vocab, 2**31 - 1, -(2**31)], np.int64)
        else:
            odd = np.array([[32767] * q.input.features, [-32768] * q.input.features],
                           np.int16)
        streams.append(np.concatenate([odd, streams[0][-5:]]))
    streams.append(streams[0][:0] if streams else np.zeros((0,), np.int64))
    return streams


def testvec_source(q: FamilyQuant, streams: list[np.ndarray], source: str) -> str:
    expected = fm.run_streams(q, streams)
    out = [generated_header("Self-test vectors: input streams and expected outputs.", source,
                            REGENERATE)]
    out += ['#include "edge_gru_family_testvec.h"', ""]
    out.append(f"const uint32_t egf_testvec_count = {len(streams)}u;")
    out.append(f"const uint32_t egf_testvec_crc32 = 0x{model_crc32(q):08X}u;")
    out.append(c_int_array("egf_testvec_len", "uint16_t", [len(s) for s in streams]))
    values = np.concatenate([np.asarray(s).reshape(-1) for s in streams] + [np.zeros(1)])
    ctype = "int32_t" if q.input.kind == "tokens" else "int16_t"
    out.append(c_int_array("egf_testvec_data", ctype, values.astype(np.int64), per_line=12))
    out.append(c_int_array("egf_testvec_expected", "int32_t", expected.reshape(-1), per_line=8))
    return "\n".join(out)


def write_family_sources(q: FamilyQuant, out_dir: Path, source: str,
                         examples: np.ndarray | None = None) -> list[Path]:
    """Write ``edge_gru_model.h/.c`` (and the test vectors when ``examples`` are given:
    integer inputs, ``(N, T)`` ids or ``(N, T, F)`` int16 frames)."""
    files = {MODEL_H: model_header(q, source), MODEL_C: model_source(q, source)}
    if examples is not None:
        files[TESTVEC_C] = testvec_source(q, self_test_streams(q, examples), source)
    return write_text_files(out_dir, files)
