"""The family C library against its NumPy model: strict and sanitized host builds, the
generated self-test, >= 100,000 fuzzed streams per model shape, the raw-reading helper, and
the Cortex-M4 self-test in QEMU."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import require_tool

from edge_gru.codegen.fixed_point_family import write_family_sources
from edge_gru.fixed_point import family_model as fm
from edge_gru.fixed_point import firmware
from edge_gru.fixed_point.family_scheme import FamilyQuant, quantize_family
from edge_gru.frontend import from_keras

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_zoo import T, build_zoo  # noqa: E402

ZOO = build_zoo()
FUZZ_STREAMS = 100_000
ASAN_STREAMS = 2_000
# One zoo model per construct the C walks differently (streaming vs layer by layer, merge
# modes, reductions, masks, tokens / features, reset_before, hidden Dense, outputs).
SHAPES = [
    "masking_stacked_softmax",  # features, Masking, 2 GRUs, softmax, streaming
    "bidirectional_seq_stacked",  # Bidirectional(concat, seq) -> GRU, layer by layer
    "masking_bidirectional_seq",  # Masking, Bidirectional(ave, seq), zero outputs
    "stacked_three_tokens",  # tokens, 3 GRUs, reset_after=False in the middle
    "seq_flatten",  # Flatten keeps T x units
    "mask_zero_seq_average",  # mask_zero, running mean
    "seq_global_max",  # tokens, running max, linear (regression) output
    "hidden_dense_relu",  # relu hidden Dense (int16 rounding of a hidden layer)
    "bidirectional_sum",  # sum merge (Q1.14), last states
]


class Built:
    """Generated family sources + one build folder."""

    def __init__(self, q: FamilyQuant, xi: np.ndarray, root: Path) -> None:
        self.q, self.xi = q, xi
        self.src, self.build = root / "src", root / "build"
        write_family_sources(q, self.src, "zoo model", xi[:8])

    def make(self, *targets: str, **variables: str) -> str:
        return firmware.make(list(targets), self.src, self.build, **variables)

    def tool(self, kind: str = "host") -> Path:
        return self.build / kind / "edge_gru_family_host"

    def _step_dtype(self) -> str:
        return "<i4" if self.q.input.kind == "tokens" else "<i2"

    def run(self, streams: list[np.ndarray]) -> np.ndarray:
        records = b"".join(np.array([len(s)], "<u4").tobytes()
                           + np.asarray(s).astype(self._step_dtype()).tobytes() for s in streams)
        out = subprocess.run([str(self.tool()), "run"], input=records, capture_output=True,
                             check=True, timeout=300).stdout
        return np.frombuffer(out, "<i4").reshape(len(streams), self.q.outputs).astype(np.int64)

    def gen(self, seed: int, count: int) -> list[np.ndarray]:
        raw = subprocess.run([str(self.tool()), "gen", str(seed), str(count)],
                             capture_output=True, check=True, timeout=120).stdout
        width = 1 if self.q.input.kind == "tokens" else self.q.input.features
        size = 4 if self.q.input.kind == "tokens" else 2
        streams, i = [], 0
        while i < len(raw):
            n = int(np.frombuffer(raw[i : i + 4], "<u4")[0])
            body = np.frombuffer(raw[i + 4 : i + 4 + n * width * size], self._step_dtype())
            streams.append(body.astype(np.int64) if width == 1 and size == 4
                           else body.reshape(n, width))
            i += 4 + n * width * size
        return streams

    def fuzz(self, kind: str, seed: int, count: int) -> dict[str, int]:
        out = subprocess.run([str(self.tool(kind)), "fuzz", str(seed), str(count)],
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        fields = dict(re.findall(r"(\w+)=(\w+)", out.stdout))
        return {k: int(v, 16 if k == "hash" else 10) for k, v in fields.items()}


@functools.cache
def _quantized(name: str) -> tuple[FamilyQuant, np.ndarray]:
    z = ZOO[name]()
    ir = from_keras(z.model, timesteps=T)
    q = quantize_family(ir, z.x)
    return q, fm.to_integer_inputs(q, z.x)


def _built(name: str, root: Path) -> Built:
    require_tool("gcc")
    q, xi = _quantized(name)
    return Built(q, xi, root)


@pytest.mark.parametrize("name", SHAPES)
def test_host_c_is_bit_exact_and_survives_fuzzing(name: str, tmp_path: Path) -> None:
    built = _built(name, tmp_path)
    out = built.make("host", "host-asan")  # -std=c99 -Wall -Wextra -Werror -pedantic, asan/ubsan
    lines = re.findall(r"selftest: (\d+)/(\d+) bit-exact", out)
    assert len(lines) == 2 and all(a == b and int(a) == 12 for a, b in lines)
    q, xi = built.q, built.xi
    assert np.array_equal(built.run(list(xi)), fm.forward(q, xi).outputs)
    stats = built.fuzz("host", 11, FUZZ_STREAMS)
    assert stats["streams"] == FUZZ_STREAMS and stats["steps"] > FUZZ_STREAMS * T
    assert stats["cross_checked"] == ((FUZZ_STREAMS + 15) // 16 if q.streamable else 0)
    sanitized = built.fuzz("host-asan", 11, ASAN_STREAMS)
    assert sanitized["streams"] == ASAN_STREAMS
    # the fuzz generator's streams (lengths 0..4T, values anywhere) equal the NumPy model
    streams = built.gen(11, 1500)
    assert max(len(s) for s in streams) > 3 * T and min(len(s) for s in streams) == 0
    assert np.array_equal(built.run(streams), fm.run_streams(q, streams))


def test_raw_reading_helper_matches_python(tmp_path: Path) -> None:
    q, _ = _quantized("normalization")
    z = ZOO["normalization"]()
    built = Built(q, fm.quantize_features(q, z.x), tmp_path)
    built.make(str(built.tool()))
    raw = fm.raw_readings(q, z.x.reshape(-1, q.input.features))
    extremes = np.array([[2**31 - 1] * q.input.features, [-(2**31)] * q.input.features], "<i4")
    raw = np.concatenate([raw, extremes]).astype("<i4")
    out = subprocess.run([str(built.tool()), "raw"], input=raw.tobytes(), capture_output=True,
                         check=True).stdout
    got = np.frombuffer(out, "<i2").reshape(-1, q.input.features)
    assert np.array_equal(got, fm.features_from_raw(q, raw))
    assert got[-2].tolist() == [32767] * q.input.features


# odd dimensions (unaligned loads), then even ones: LDRD loads, the n % 4 == 2 pair tail
# (input 6), reset_after and reset_before on the Cortex-M4 path
@pytest.mark.parametrize("name", ["masking_stacked_softmax", "bidirectional_seq_stacked",
                                  "seq_global_max", "reset_before_no_bias"])
def test_qemu_selftest(name: str, tmp_path: Path) -> None:
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        require_tool(tool)
    built = _built(name, tmp_path)
    out = built.make("qemu-test")
    m = re.search(r"selftest: (\d+)/(\d+) bit-exact; counter ticks per sequence \d+ "
                  r"\(instructions (\d+)\) OK", out)
    assert m and m.group(1) == m.group(2) == "12"
    macs = T * sum(g.units * 3 * (g.input_dim + g.units) for r in built.q.recurrent
                   for g in (r.forward, r.backward) if g is not None)
    assert 1.0 < int(m.group(3)) / macs < 40.0


def _selftest_instructions(out: str) -> int:
    m = re.search(r"selftest: (\d+)/(\d+) bit-exact; counter ticks per sequence \d+ "
                  r"\(instructions (\d+)\) OK", out)
    assert m and m.group(1) == m.group(2) == "12"
    return int(m.group(3))


@pytest.mark.parametrize("name", ["bidirectional_seq_stacked", "reset_before_no_bias"])
def test_run_time_dimensions_path_gives_the_same_bits(name: str, tmp_path: Path) -> None:
    """-DEGF_MAX_SPECIALIZED=0: every direction takes the step with run-time dimensions
    (the path of models with more than 8 directions) and gives the specialized steps' bits."""
    built = _built(name, tmp_path)
    generic = "-DEGF_MAX_SPECIALIZED=0"
    built.make(str(built.tool()), CDEFS=generic)
    q, xi = built.q, built.xi
    assert np.array_equal(built.run(list(xi)), fm.forward(q, xi).outputs)
    streams = built.gen(5, 300)
    assert np.array_equal(built.run(streams), fm.run_streams(q, streams))
    if name == "reset_before_no_bias":  # even dimensions: the M4's LDRD path
        for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
            require_tool(tool)
        slow = _selftest_instructions(firmware.make(["qemu-test"], built.src,
                                                    tmp_path / "generic", CDEFS=generic))
        fast = _selftest_instructions(built.make("qemu-test"))
        assert fast < 0.8 * slow


def test_qemu_uart_server_runs_feature_frames(tmp_path: Path) -> None:
    """serve_family over the emulated UART: frames in, outputs + argmax + counts out."""
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        require_tool(tool)
    from edge_gru.codegen.fixed_point_family import model_crc32
    from edge_gru.fixed_point.device import ticks_to_instructions
    from edge_gru.fixed_point.family_device import FamilyDevice
    from edge_gru.fixed_point.qemu import QemuDevice

    built = _built("masking_stacked_softmax", tmp_path)
    built.make("all", BOARD="qemu_mps2")
    q, xi = built.q, built.xi
    emulator = QemuDevice(built.build / "qemu_mps2" / "serve.elf", client=FamilyDevice)
    try:
        device = emulator.device
        assert isinstance(device, FamilyDevice)
        info = device.info()
        assert info.model_crc32 == model_crc32(q) and info.dsp and not info.tokens
        assert (info.vocab_or_features, info.outputs, info.timesteps) == (q.input.features,
                                                                          q.outputs, T)
        streams = list(xi) + [xi[1][-3:], xi[2][:0], np.concatenate([xi[3], xi[4]])]
        result = device.run_sequences(streams, False, q.outputs)
        assert np.array_equal(result.outputs, fm.run_streams(q, streams))
        assert np.array_equal(result.argmax, np.argmax(result.outputs, axis=1))
        assert np.all(result.steps == T)
        instructions = ticks_to_instructions(result.ticks)
        assert instructions.min() > 0
    finally:
        emulator.close()
    assert emulator.proc.poll() is not None


def test_stm32_profile_selftest_and_uart(tmp_path: Path) -> None:
    """netduinoplus2 (STM32F405): the STM32 USART register code and the bounded clock wait
    (QEMU has no RCC model) run the self-test and the UART server."""
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        require_tool(tool)
    from edge_gru.fixed_point.family_device import FamilyDevice
    from edge_gru.fixed_point.qemu import QemuDevice

    built = _built("mask_zero_seq_average", tmp_path)
    out = built.make("qemu-test-stm32")
    assert re.search(r"selftest: 12/12 bit-exact; counter ticks per sequence \d+ OK", out)
    built.make("all", BOARD="netduinoplus2")
    elf = built.build / "netduinoplus2" / "serve.elf"
    emulator = QemuDevice(elf, client=FamilyDevice, machine="netduinoplus2")
    try:
        device = emulator.device
        assert isinstance(device, FamilyDevice)
        assert device.info().tokens and device.info().counter_kind == 0
        q, xi = built.q, built.xi
        result = device.run_sequences(list(xi), True, q.outputs)
        assert np.array_equal(result.outputs, fm.forward(q, xi).outputs)
    finally:
        emulator.close()
    nm = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True,
                        check=True).stdout
    assert re.search(r"^08000000 \w vector_table$", nm, re.M)


def test_board_cli_sends_feature_sequences(tmp_path: Path, capsys) -> None:
    """``board --npy`` / ``--csv`` against QEMU's serial port: device output = Python's."""
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        require_tool(tool)
    from edge_gru.errors import EdgeGruError
    from edge_gru.fixed_point import board
    from edge_gru.fixed_point.family_device import FamilyDevice
    from edge_gru.fixed_point.family_io import save_quant
    from edge_gru.fixed_point.qemu import QemuDevice

    z = ZOO["normalization"]()
    q, _ = _quantized("normalization")
    built = Built(q, fm.quantize_features(q, z.x), tmp_path / "fw")
    bundle = tmp_path / "bundle"
    (bundle / "fixed_point").mkdir(parents=True)
    save_quant(q, bundle / "fixed_point" / "family_model.npz")
    np.save(tmp_path / "seqs.npy", z.x[:3])
    np.savetxt(tmp_path / "one.csv", z.x[5], delimiter=",")
    built.make("all", BOARD="qemu_mps2")
    emulator = QemuDevice(built.build / "qemu_mps2" / "serve.elf", client=FamilyDevice)
    try:
        url = emulator.device.url
        emulator.device.close()
        emulator.device = None
        assert board.run(["--port", url, "--bundle", str(bundle), "--npy",
                          str(tmp_path / "seqs.npy")]) == 0
        assert board.run(["--port", url, "--bundle", str(bundle), "--csv",
                          str(tmp_path / "one.csv")]) == 0
        header = "ax,ay,az,gx,gy\n" + "\n".join(",".join(map(repr, r)) for r in z.x[6].tolist())
        (tmp_path / "header.csv").write_text(header)  # a header row is skipped
        assert board.run(["--port", url, "--bundle", str(bundle), "--csv",
                          str(tmp_path / "header.csv")]) == 0
        with pytest.raises(EdgeGruError, match="reads 5 features per step, got 3"):
            np.save(tmp_path / "bad.npy", z.x[:2, :, :3])
            board.run(["--port", url, "--bundle", str(bundle), "--npy", str(tmp_path / "bad.npy")])
        bad = z.x[:2].copy()
        bad[1, 4, 2] = np.nan
        np.save(tmp_path / "nan.npy", bad)
        with pytest.raises(EdgeGruError, match="NaN or inf at sequence 1, step 4"):
            board.run(["--port", url, "--bundle", str(bundle), "--npy", str(tmp_path / "nan.npy")])
        with pytest.raises(SystemExit):  # one source at a time
            board.run(["--port", url, "--bundle", str(bundle), "--npy", str(tmp_path / "seqs.npy"),
                       "--csv", str(tmp_path / "one.csv")])
        # a bundle of other weights: said in one line, outputs not judged against its model
        other = tmp_path / "other"
        (other / "fixed_point").mkdir(parents=True)
        q.head[-1].bias[0] += 1
        save_quant(q, other / "fixed_point" / "family_model.npz")
        assert board.run(["--port", url, "--bundle", str(other), "--npy",
                          str(tmp_path / "seqs.npy")]) == 0
    finally:
        emulator.close()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"device: features T {T}, 4 outputs (Q.15)")
    results = [line for line in lines if line[:1].isdigit()]
    assert len(results) == 8 and all("= Python" in line for line in results[:5])
    assert not any("Python" in line for line in results[5:])  # the other weights' outputs
    assert sum(line.startswith("note: the device runs other weights") for line in lines) == 1
