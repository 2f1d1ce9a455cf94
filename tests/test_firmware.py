"""The C library against its Python model: host builds (strict + sanitizers), fuzzing,
the Cortex-M4 image in QEMU (self-test and the UART server), the board build and budgets."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import require_tool

from edge_gru.codegen.fixed_point import model_crc32, write_sources
from edge_gru.fixed_point import firmware
from edge_gru.fixed_point import model as fm
from edge_gru.fixed_point.device import strip_padding, ticks_to_instructions
from edge_gru.fixed_point.scheme import QuantizedGru, quantize
from edge_gru.weights import GruWeights

FUZZ_STREAMS = 100_000


def tiny_weights(reset_after: bool) -> GruWeights:
    """Odd sizes (E 6, U 5) reach the dot products' tail loops the trained models skip."""
    rng = np.random.default_rng(7)
    v, e, u = 300, 6, 5
    return GruWeights(
        embedding=rng.normal(0, 0.6, (v, e)), kernel=rng.normal(0, 0.6, (e, 3 * u)),
        recurrent_kernel=rng.normal(0, 0.6, (u, 3 * u)), input_bias=rng.normal(0, 0.2, 3 * u),
        recurrent_bias=rng.normal(0, 0.2, 3 * u) if reset_after else np.zeros(3 * u),
        dense_kernel=rng.normal(0, 1.0, u), dense_bias=0.1, reset_after=reset_after, maxlen=50,
    )


class Built:
    """Generated sources + one build folder for a quantized model."""

    def __init__(self, q: QuantizedGru, root: Path, reviews: np.ndarray | None) -> None:
        self.q = q
        self.src = root / "src"
        self.build = root / "build"
        write_sources(q, self.src, "test model", reviews)

    def make(self, *targets: str, **variables: str) -> str:
        return firmware.make(list(targets), self.src, self.build, **variables)

    def tool(self, kind: str = "host") -> Path:
        path = self.build / kind / "edge_gru_host"
        self.make(str(path))
        return path

    def run(self, ids_or_streams: list[np.ndarray], kind: str = "host") -> np.ndarray:
        records = b"".join(
            np.array([len(s)], "<u4").tobytes() + np.asarray(s, "<i4").tobytes()
            for s in ids_or_streams
        )
        out = subprocess.run([str(self.tool(kind)), "run"], input=records, capture_output=True,
                             check=True, timeout=300).stdout
        return np.frombuffer(out, "<i2").astype(np.int64)


@pytest.fixture(scope="module")
def seed(small_model, tmp_path_factory) -> Built:
    require_tool("gcc")
    return Built(quantize(small_model.weights), tmp_path_factory.mktemp("seed"),
                 small_model.data.x_test[:24])


@pytest.fixture(scope="module")
def before(small_model_reset_before, tmp_path_factory) -> Built:
    require_tool("gcc")
    m = small_model_reset_before
    return Built(quantize(m.weights), tmp_path_factory.mktemp("before"), m.data.x_test[:24])


@pytest.mark.parametrize("name", ["seed", "before"])
def test_host_builds_strict_and_sanitized_selftest(name: str, request) -> None:
    built: Built = request.getfixturevalue(name)
    out = built.make("host", "host-asan")  # -std=c99 -Wall -Wextra -Werror -pedantic (+ asan/ubsan)
    lines = re.findall(r"selftest: (\d+)/(\d+) bit-exact", out)
    assert len(lines) == 2 and all(a == b and int(a) >= 28 for a, b in lines)


@pytest.mark.parametrize("name", ["seed", "before"])
def test_host_c_equals_python_on_1000_reviews(name: str, request) -> None:
    built: Built = request.getfixturevalue(name)
    data = request.getfixturevalue("small_model" if name == "seed" else "small_model_reset_before")
    ids = data.data.x_test[:1000]
    expected = fm.forward_q15(built.q, ids)
    assert np.array_equal(built.run(list(ids)), expected)
    # unpadded streams: the C pads them back exactly as training did
    assert np.array_equal(built.run([strip_padding(r) for r in ids[:200]]), expected[:200])


def _fuzz(built: Built, seed: int, count: int) -> dict[str, int]:
    out = subprocess.run([str(built.tool("host-asan")), "fuzz", str(seed), str(count)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    fields = dict(re.findall(r"(\w+)=(\w+)", out.stdout))
    return {k: int(v, 16 if k == "hash" else 10) for k, v in fields.items()}


def _gen(built: Built, seed: int, count: int) -> list[np.ndarray]:
    raw = subprocess.run([str(built.tool()), "gen", str(seed), str(count)], capture_output=True,
                         check=True, timeout=120).stdout
    words = np.frombuffer(raw, "<i4")
    streams, i = [], 0
    while i < len(words):
        n = int(words[i])
        streams.append(words[i + 1 : i + 1 + n].astype(np.int64))
        i += 1 + n
    assert len(streams) == count
    return streams


@pytest.mark.parametrize("reset_after", [True, False])
def test_fuzz_random_streams_under_sanitizers(reset_after: bool, tmp_path: Path) -> None:
    require_tool("gcc")
    built = Built(quantize(tiny_weights(reset_after)), tmp_path, None)
    count = FUZZ_STREAMS if reset_after else FUZZ_STREAMS // 5
    stats = _fuzz(built, 11, count)
    assert stats["streams"] == count
    assert stats["out_of_range"] > stats["tokens"] // 5  # negative, huge and boundary ids
    assert stats["cross_checked"] == (count + 15) // 16
    # the same generator's streams, lengths 0..500, equal the Python model bit for bit
    streams = _gen(built, 11, 2000)
    assert {len(s) for s in streams} >= {0, 500} or max(len(s) for s in streams) > 490
    assert np.array_equal(built.run(streams), fm.run_streams_q15(built.q, streams))


def test_fuzz_trained_model_under_sanitizers(seed: Built) -> None:
    stats = _fuzz(seed, 5, 3000)
    assert stats["streams"] == 3000 and stats["out_of_range"] > 0
    streams = _gen(seed, 5, 300)
    assert np.array_equal(seed.run(streams), fm.run_streams_q15(seed.q, streams))


@pytest.fixture(scope="module")
def arm_tools() -> None:
    for tool in ("arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm"):
        require_tool(tool)


@pytest.mark.parametrize("portable", ["", "1"])
def test_qemu_selftest_dsp_and_portable(seed: Built, arm_tools: None, portable: str) -> None:
    out = seed.make("qemu-test", PORTABLE=portable)
    m = re.search(r"selftest: (\d+)/(\d+) bit-exact; counter ticks per review \d+ "
                  r"\(instructions (\d+)\) OK", out)
    assert m and m.group(1) == m.group(2) == "28"
    macs = seed.q.maxlen * 3 * seed.q.units * (seed.q.embed_dim + seed.q.units)
    assert 1.0 < int(m.group(3)) / macs < (3.0 if not portable else 8.0)


def test_qemu_selftest_reset_before(before: Built, arm_tools: None) -> None:
    assert re.search(r"selftest: 28/28 bit-exact", before.make("qemu-test"))


@pytest.mark.parametrize("reset_after", [True, False])
def test_qemu_selftest_odd_sizes(reset_after: bool, arm_tools: None, tmp_path: Path) -> None:
    """E 6, U 5: the state's int16 arrays stay 4-byte aligned for the DSP path's LDRD."""
    w = tiny_weights(reset_after)
    ids = np.random.default_rng(3).integers(0, w.vocab, (24, w.maxlen))
    built = Built(quantize(w), tmp_path, ids)
    assert re.search(r"selftest: 28/28 bit-exact", built.make("qemu-test"))


def test_qemu_uart_server_is_bit_exact(seed: Built, small_model, arm_tools: None) -> None:
    from edge_gru.fixed_point.qemu import QemuDevice

    seed.make("all", BOARD="qemu_mps2")
    emulator = QemuDevice(seed.build / "qemu_mps2" / "serve.elf")
    try:
        info = emulator.info
        assert info.model_crc32 == model_crc32(seed.q) and info.dsp and info.units == 32
        ids = small_model.data.x_test[1000:1200]
        result = emulator.device.score(ids)
        assert np.array_equal(result.scores, fm.forward_q15(seed.q, ids))
        assert np.all(result.steps == seed.q.maxlen)
        odd = [np.array([-5, 10**9, 3, 4], np.int64), np.zeros(0, np.int64), ids[0].repeat(2)]
        assert np.array_equal(emulator.device.score_streams(odd).scores,
                              fm.run_streams_q15(seed.q, odd))
        instructions = ticks_to_instructions(result.ticks)
        assert instructions.max() - instructions.min() < 0.01 * instructions.mean()
    finally:
        emulator.close()
    assert emulator.proc.poll() is not None


def test_budgets_and_board_build(seed: Built, small_model, arm_tools: None) -> None:
    seed.make("all", BOARD="qemu_mps2")
    b = firmware.budgets(seed.build / "qemu_mps2")
    assert b.ram_bytes <= 1024 and b.code_bytes <= 8192
    params = small_model.weights.parameter_count
    assert params < b.weights_bytes <= params * 1.06
    seed.make("all", BOARD="nucleo_f446re")
    elf = seed.build / "nucleo_f446re" / "serve.elf"
    nm = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True,
                        check=True).stdout
    symbols = {line.split()[-1]: int(line.split()[0], 16) for line in nm.splitlines()
               if len(line.split()) == 3}
    assert symbols["vector_table"] == 0x08000000  # the STM32F446's flash
    assert symbols["_estack"] == 0x20000000 + 128 * 1024
    flash = firmware.budgets(seed.build / "nucleo_f446re").image_flash_bytes
    assert flash <= 512 * 1024


def test_make_without_weights_says_what_to_do(tmp_path: Path) -> None:
    require_tool("make")
    proc = subprocess.run(["make", "-s", "-C", str(firmware.firmware_dir()),
                           f"WEIGHTS_DIR={tmp_path}", f"BUILD={tmp_path / 'b'}", "host"],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "python -m edge_gru.convert" in proc.stdout + proc.stderr


def test_board_cli_scores_texts_over_the_uart(seed: Built, small_model, data_dir: Path,
                                              tmp_path: Path, capsys, arm_tools: None) -> None:
    """The README's board command, against QEMU's serial port (same code as /dev/tty*)."""
    from edge_gru.data.text import load_word_index, save_ranked_words
    from edge_gru.errors import EdgeGruError
    from edge_gru.fixed_point import board
    from edge_gru.fixed_point.qemu import QemuDevice

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    save_ranked_words(load_word_index(data_dir / "imdb_word_index.json"),
                      bundle / "word_index.txt.gz")
    small_model.weights.save(bundle / "gru_weights.npz")
    seed.make("all", BOARD="qemu_mps2")
    emulator = QemuDevice(seed.build / "qemu_mps2" / "serve.elf")
    try:
        url = emulator.device.url
        emulator.device.close()  # the CLI opens the port itself
        emulator.device = None
        texts = ["A wonderful, moving film with superb acting.", "Dull, boring and far too long."]
        assert board.run(["--port", url, "--bundle", str(bundle), *texts]) == 0
    finally:
        emulator.close()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("device: vocab 10000, units 32, maxlen 100, DSP path on")
    assert len(lines) == 3 and all("= Python" in line for line in lines[1:])
    with pytest.raises(EdgeGruError):
        board.run(["--port", "socket://127.0.0.1:1", "--bundle", str(bundle), "text"])
