"""Weights files from strangers: whatever is in them, loading runs no code, prints no traceback, and a
damaged or hand-edited file fails with one sentence (`ganzoo sample` and `ganzoo run --resume`)."""

import io
import json
import os
import pickle
import pickletools
import struct

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import save, save_file

from ganzoo.checkpoint import read_tensors, save_generator
from ganzoo.models import build_generator
from ganzoo.run import train

from conftest import tiny_config
from faultkit import assert_one_line_error, run_cli

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A real generator file (tiny DCGAN) as bytes."""
    folder = tmp_path_factory.mktemp("weights")
    config = tiny_config(folder)
    return save_generator(folder / "g.safetensors", build_generator(config), config).read_bytes()


def split(raw: bytes) -> tuple[dict, bytes]:
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def join(header, data: bytes, length: int | None = None) -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def with_metadata(raw, **changes):
    header, data = split(raw)
    header["__metadata__"].update(changes)
    return join(header, data)


def with_config(raw, **changes):
    header, _ = split(raw)
    config = json.loads(header["__metadata__"]["ganzoo.config"])
    config.update(changes)
    return with_metadata(raw, **{"ganzoo.config": json.dumps(config)})


def with_tensor_entry(raw, **changes):
    header, data = split(raw)
    first = next(k for k in header if k != "__metadata__")
    header[first].update(changes)
    return join(header, data)


def with_nan(raw):
    header, data = split(raw)
    first = next(k for k in header if k != "__metadata__" and header[k]["dtype"] == "F32")
    start = header[first]["data_offsets"][0]
    data = data[:start] + struct.pack("<f", float("nan")) + data[start + 4:]
    return join(header, data)


class RunsCode:
    """Unpickling this would create a file: the proof that code ran."""

    marker = None

    def __reduce__(self):
        return (os.makedirs, (str(self.marker),))


def torch_save_bytes():
    buffer = io.BytesIO()
    torch.save({"G.net.0.weight": torch.zeros(2)}, buffer)
    return buffer.getvalue()


def damaged_with_header_length(raw, length):
    """A tensor entry whose shape does not match its bytes, the header padded with spaces (as the format
    allows) to `length` bytes: a file whose first bytes read like a pickle's protocol mark, and are not."""
    header, data = split(with_tensor_entry(raw, shape=[999]))
    text = json.dumps(header).encode()
    return join(text + b" " * (length - len(text)), data)


# name -> (damage applied to a real generator file, what the one-line error says)
DAMAGED = {
    "truncated": (lambda raw: raw[: len(raw) // 2], "not a readable safetensors file"),
    "empty": (lambda raw: b"", "header too small"),
    "header longer than the file": (lambda raw: struct.pack("<Q", len(raw)) + raw[8:], "not a readable safetensors"),
    "huge header length": (lambda raw: struct.pack("<Q", 2 ** 63) + raw[8:], "header too large"),
    "all-ones header length": (lambda raw: b"\xff" * 8 + raw[8:], "header too large"),
    "zero header length": (lambda raw: struct.pack("<Q", 0) + raw[8:], "invalid JSON in header"),
    "header not JSON": (lambda raw: join(b"{not json at all}", split(raw)[1]), "invalid JSON in header"),
    "header a JSON list": (lambda raw: join([1, 2], split(raw)[1]), "invalid JSON in header"),
    "offsets past the end": (lambda raw: with_tensor_entry(raw, data_offsets=[0, 10 ** 9]), "offset for tensor"),
    "unknown dtype": (lambda raw: with_tensor_entry(raw, dtype="F128"), "unknown variant"),
    "shape not matching bytes": (lambda raw: with_tensor_entry(raw, shape=[999]), "offset for tensor"),
    "metadata value not a string": (lambda raw: with_metadata(raw, **{"ganzoo.config": 5}), "expected a string"),
    "config not JSON": (lambda raw: with_metadata(raw, **{"ganzoo.config": "{oops"}), "not valid JSON"),
    "config a JSON list": (lambda raw: with_metadata(raw, **{"ganzoo.config": "[1]"}), "not a JSON object"),
    "config field of wrong type": (lambda raw: with_config(raw, z_dim="16"), "'z_dim' should be int, got str"),
    "config true for an int": (lambda raw: with_config(raw, z_dim=True), "'z_dim' should be int, got bool"),
    "config null for a name": (lambda raw: with_config(raw, generator=None), "'generator' should be str"),
    "config NUL in a name": (lambda raw: with_config(raw, generator="dc\0gan"), "'generator' holds a NUL character"),
    "config unknown field": (lambda raw: with_config(raw, colour="red"), "unknown fields ['colour']"),
    "config negative size": (lambda raw: with_config(raw, z_dim=-3), "--z-dim must be a positive integer"),
    "config huge latent": (lambda raw: with_config(raw, z_dim=10 ** 12), "the model expects (1000000000000"),
    "config huge width": (lambda raw: with_config(raw, g_width=10 ** 9), "too large to build"),
    "config huge image": (lambda raw: with_config(raw, image_size=2 ** 20), "larger than ganzoo trains"),
    "config unknown generator": (lambda raw: with_config(raw, generator="nosuch"), "Unknown generator 'nosuch'"),
    "config unknown model": (lambda raw: with_config(raw, model="nosuch", generator=""), "Unknown generator ''"),
    "config of another shape": (lambda raw: with_config(raw, g_width=16), "has shape"),
    "other format version": (lambda raw: with_metadata(raw, **{"ganzoo.format": "2"}), "not a ganzoo weights"),
    "NaN in a tensor": (with_nan, "holds NaN/Inf values"),
    "torch.save file": (lambda raw: torch_save_bytes(), "is a pickle (torch.save) file"),
    # A damaged safetensors file whose header length starts 0x80 (0x0880) or 0x80 0x02 (0x0280), as a
    # pickle's protocol mark does: still named a damaged safetensors file, not a pickle.
    "header length low byte 0x80": (lambda raw: damaged_with_header_length(raw, 0x0880), "not a readable"),
    "header length like protocol 2": (lambda raw: damaged_with_header_length(save({"w": torch.zeros(1)}), 0x0280),
                                      "not a readable"),
}


@pytest.mark.parametrize("name", DAMAGED)
def test_damaged_or_hand_edited_weights_fail_with_one_sentence(tmp_path, capsys, weights, name):
    damage, message = DAMAGED[name]
    path = tmp_path / "w.safetensors"
    path.write_bytes(damage(weights))
    code, _, err = run_cli(capsys, "sample", path, "-n", "4", "--out", tmp_path / "grid.png")
    line = assert_one_line_error(code, err)
    assert message in line and str(path) in line
    assert not (tmp_path / "grid.png").exists()


@pytest.mark.parametrize("suffix", [".safetensors", ".pt", ".bin"])
def test_a_pickle_never_runs(tmp_path, capsys, monkeypatch, suffix):
    marker = tmp_path / "code-ran"
    monkeypatch.setattr(RunsCode, "marker", marker)
    path = tmp_path / f"evil{suffix}"
    path.write_bytes(pickle.dumps(RunsCode()))
    # The file is live, shown without unpickling it: it names os.makedirs, and that call makes the marker.
    assert "makedirs" in {str(arg) for _, arg, _ in pickletools.genops(path.read_bytes())}
    call, args = RunsCode().__reduce__()
    call(*args)
    assert marker.is_dir()
    marker.rmdir()
    code, _, err = run_cli(capsys, "sample", path, "-n", "4", "--out", tmp_path / "grid.png")
    assert "pickle" in assert_one_line_error(code, err)
    assert not marker.exists()


# -- checkpoints handed to --resume -----------------------------------------------------------------

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A real checkpoint after 8 steps (one epoch of fake data at batch 128), as tensors and metadata."""
    folder = tmp_path_factory.mktemp("ckpt")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = tiny_config(folder, batch_size=128)
        train(config)
    finally:
        torch.set_num_threads(before)
    return read_tensors(f"{config.out}/checkpoint.safetensors")


def edit_state(metadata, **changes):
    state = json.loads(metadata["ganzoo.state"])
    state.update(changes)
    return {**metadata, "ganzoo.state": json.dumps(state)}


def edit_config(metadata, **changes):
    config = json.loads(metadata["ganzoo.config"])
    config.update(changes)
    return {**metadata, "ganzoo.config": json.dumps(config)}


def without(tensors, name):
    return {k: v for k, v in tensors.items() if k != name}


# name -> (tensors, metadata -> tensors, metadata), what the one-line error says
BAD_CHECKPOINTS = {
    "state not JSON": (lambda t, m: (t, {**m, "ganzoo.state": "{"}), "training state is missing or malformed"),
    "state missing": (lambda t, m: (t, {k: v for k, v in m.items() if k != "ganzoo.state"}), "KeyError"),
    "step missing": (lambda t, m: (t, edit_state(m, step=None)), "bad step counters"),
    "step negative": (lambda t, m: (t, edit_state(m, step=-8)), "bad step counters"),
    "step a string": (lambda t, m: (t, edit_state(m, step="8")), "bad step counters"),
    "step not fitting the data": (lambda t, m: (t, edit_state(m, step=9)), "the dataset changed"),
    "optimizer state garbled": (lambda t, m: (t, edit_state(m, opt_g={"param_groups": 3, "scalars": {}})),
                                "malformed"),
    "optimizer tensor missing": (lambda t, m: (without(t, "opt_d.0.exp_avg"), m), "optimizer state"),
    "RNG state missing": (lambda t, m: (without(t, "rng.torch"), m), "KeyError"),
    "RNG state wrong size": (lambda t, m: ({**t, "rng.data_epoch": torch.zeros(3, dtype=torch.uint8)}, m),
                             "malformed"),
    "discriminator tensor missing": (lambda t, m: (without(t, "D.net.0.weight"), m), "discriminator weights"),
    "unknown loss": (lambda t, m: (t, edit_config(m, loss="wasserstein-42")), "Unknown loss 'wasserstein-42'"),
    "generator-only file": (lambda t, m: (t, {**m, "ganzoo.kind": "generator"}), "generator-only file"),
}


@pytest.mark.parametrize("name", BAD_CHECKPOINTS)
def test_damaged_checkpoint_fails_to_resume_with_one_sentence(tmp_path, capsys, checkpoint, name):
    edit, message = BAD_CHECKPOINTS[name]
    tensors, metadata = edit(*checkpoint)
    run = tmp_path / "run"
    run.mkdir()
    save_file(tensors, str(run / "checkpoint.safetensors"), metadata=metadata)
    code, _, err = run_cli(capsys, "run", "--resume", run, "--epochs", "2")
    line = assert_one_line_error(code, err)
    assert message in line and str(run / "checkpoint.safetensors") in line
    assert not (run / "dcgan.safetensors").exists()                      # nothing trained, nothing written


# -- fuzz: random damage to a real file -------------------------------------------------------------

@st.composite
def mutations(draw, size: int, header_end: int):
    """Byte flips (half of them in the header), maybe a truncation, maybe a forged header length."""
    flips = draw(st.lists(st.tuples(st.one_of(st.integers(0, header_end - 1), st.integers(0, size - 1)),
                                    st.integers(0, 255)), max_size=6))
    cut = draw(st.none() | st.integers(0, size))
    length = draw(st.none() | st.integers(0, 2 ** 64 - 1))
    return flips, cut, length


def mutate(raw: bytes, flips, cut, length) -> bytes:
    data = bytearray(raw)
    for position, value in flips:
        data[position] = value
    if length is not None:
        data[:8] = struct.pack("<Q", length)
    return bytes(data[:cut] if cut is not None else data)


def test_fuzzed_weights_either_work_or_fail_with_one_line(tmp_path_factory, capsys, weights):
    header_end = 8 + struct.unpack("<Q", weights[:8])[0]
    outcomes = set()

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
    @given(mutations(len(weights), header_end))
    def check(mutation):
        folder = tmp_path_factory.mktemp("fuzz")
        path, grid = folder / "w.safetensors", folder / "grid.png"
        path.write_bytes(mutate(weights, *mutation))
        code, _, err = run_cli(capsys, "sample", path, "-n", "4", "--out", grid)
        if code == 0:
            assert Image.open(grid).size == (2 * 32 + 3 * 2, 2 * 32 + 3 * 2)
        else:
            assert_one_line_error(code, err)
        outcomes.add(code)

    check()
    assert outcomes == {0, 1}  # some damage is harmless (a flipped weight), most is refused; nothing else
