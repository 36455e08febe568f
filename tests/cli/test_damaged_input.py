"""Damaged and adversarial input, table-driven: per format (config files, weights files, checkpoints, IDX
datasets) and per command, each field damaged in turn. Every case must end in one sentence on stderr with exit
1 or 2: never an internal error (exit 3), a signal, a traceback or a hang (a 60 s alarm turns a hang into a
failure), and no header may make a small file allocate gigabytes (the process's address space is capped).

`python -m pytest tests/cli/test_damaged_input.py -q -rA` lists the cases; the module's CASES count them.
"""

import gzip
import json
import resource
import signal
import struct

import numpy as np
import pytest

from ganzoo.cli import main

from helpers import write_idx

NEST = 100_000                                         # levels of nesting: far beyond Python's recursion limit

# -- the files each case damages ----------------------------------------------------------------------------


def yaml_bomb(nested: bool) -> str:
    """Billion laughs: 9 levels of 10 aliases each, 10^9 values once expanded, a few hundred bytes as written."""
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]")
    body = "\n".join(lines)
    if nested:             # the anchors hidden under a key's value, the bomb deep in the options
        return "options:\n  loss:\n    anchors: {" + ", ".join(l.replace(": ", ": ", 1) for l in lines) + "}\n" \
               "    a: *a9\n"
    return body + "\noptions: *a9\n"


CONFIG_FILES = {   # name -> (file name, bytes)
    "utf-16 with a BOM": ("run.yaml", "epochs: 1\nbogus: 2\n".encode("utf-16")),
    "utf-8 with a BOM": ("run.yaml", "\ufeffepochs: 1\nbogus: 2\n".encode("utf-8")),
    "utf-32 with a BOM": ("run.yaml", "epochs: 1\nbogus: 2\n".encode("utf-32")),
    "latin-1, no BOM": ("run.yaml", "data: caf\xe9\n".encode("latin-1")),
    "utf-16 without a BOM": ("run.yaml", "epochs: 1\n".encode("utf-16-le")),
    "binary garbage": ("run.yaml", bytes(range(256)) * 4),
    "json nested beyond reason": ("run.json", b"[" * NEST + b"]" * NEST),
    "json object nested in a value": ("run.json", b'{"options": ' + b'{"a":' * NEST + b"1" + b"}" * NEST + b"}"),
    "yaml nested beyond reason": ("run.yaml", b"[" * NEST + b"]" * NEST),
    "yaml alias bomb at the top": ("run.yaml", yaml_bomb(False).encode()),
    "yaml alias bomb inside options": ("run.yaml", yaml_bomb(True).encode()),
    "yaml alias cycle": ("run.yaml", b"options: &a {loss: {a: *a}}\n"),
    "yaml cut short": ("run.yaml", b"epochs: [1, 2\n"),
    "toml cut short": ("run.toml", b'epochs = "'),
    "json cut short": ("run.json", b'{"epochs": 1,'),
    "a list, not settings": ("run.yaml", b"- 1\n- 2\n"),
    "a huge number": ("run.yaml", b"epochs: 1" + b"0" * 5000 + b"\n"),
    "a huge string": ("run.yaml", b"data: " + b"x" * 200_000 + b"\n"),
}


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A tiny finished run: its generator file and its checkpoint, to damage copies of."""
    out = tmp_path_factory.mktemp("run") / "run"
    assert main(["run", "basicgan", "--data", "fake", "--image-size", "8", "--batch-size", "256", "--g-width", "4",
                 "--d-width", "4", "--z-dim", "2", "--epochs", "1", "--device", "cpu", "--samples", "4",
                 "--threads", "1", "--out", str(out)]) == 0
    return out


def rewrite_header(raw: bytes, change) -> bytes:
    """A safetensors file with its JSON header changed by `change(header: dict)`."""
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + size])
    change(header)
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + raw[8 + size:]


def set_metadata(key, value):
    def change(header):
        header["__metadata__"][key] = value
    return change


def first_tensor(change_entry):
    def change(header):
        name = next(k for k in header if k != "__metadata__")
        change_entry(header[name])
    return change


WEIGHTS_DAMAGE = {   # name -> bytes of a valid file -> damaged bytes
    "cut to 8 bytes": lambda raw: raw[:8],
    "cut in the header": lambda raw: raw[:40],
    "cut in the tensors": lambda raw: raw[:len(raw) - 100],
    "header length 2^62": lambda raw: struct.pack("<Q", 1 << 62) + raw[8:],
    "header length past the end": lambda raw: struct.pack("<Q", len(raw)) + raw[8:],
    "header not JSON": lambda raw: struct.pack("<Q", 4) + b"\xff\xfe{[" + raw[12:],
    "config nested beyond reason": lambda raw: rewrite_header(raw, set_metadata("ganzoo.config", "[" * NEST)),
    "config object nested": lambda raw: rewrite_header(raw, set_metadata(
        "ganzoo.config", '{"a":' * NEST + "1" + "}" * NEST)),
    "plugins nested beyond reason": lambda raw: rewrite_header(raw, set_metadata("ganzoo.plugins", "[" * NEST)),
    "config not JSON": lambda raw: rewrite_header(raw, set_metadata("ganzoo.config", "{not json")),
    "config with a huge number": lambda raw: rewrite_header(raw, set_metadata(
        "ganzoo.config", '{"batch_size": 1' + "0" * 5000 + "}")),
    "tensor shape larger than its data": lambda raw: rewrite_header(raw, first_tensor(
        lambda e: e.update(shape=[1 << 20, 1 << 20]))),
    "tensor offsets past the end": lambda raw: rewrite_header(raw, first_tensor(
        lambda e: e.update(data_offsets=[0, 1 << 40]))),
    "tensor dtype unknown": lambda raw: rewrite_header(raw, first_tensor(lambda e: e.update(dtype="Q99"))),
}

HARMLESS = {"plugins nested beyond reason"}    # names what made the file: read only when a plugin is missing

CHECKPOINT_DAMAGE = {
    **{k: WEIGHTS_DAMAGE[k] for k in ("cut in the tensors", "header length 2^62", "config nested beyond reason",
                                      "tensor shape larger than its data")},
    "state nested beyond reason": lambda raw: rewrite_header(raw, set_metadata("ganzoo.state", "[" * NEST)),
    "state object nested": lambda raw: rewrite_header(raw, set_metadata(
        "ganzoo.state", '{"step":' * NEST + "1" + "}" * NEST)),
    "state not JSON": lambda raw: rewrite_header(raw, set_metadata("ganzoo.state", "{")),
}


def idx_files(folder, damage):
    images = np.zeros((8, 28, 28), np.uint8)
    labels = np.zeros(8, np.uint8)
    raw = folder / "MNIST" / "raw"
    write_idx(raw, "train", images, labels)
    write_idx(raw, "test", images, labels)
    path = raw / "train-images-idx3-ubyte.gz"
    path.write_bytes(damage(gzip.decompress(path.read_bytes()), path.read_bytes()))


IDX_DAMAGE = {   # (decompressed bytes, gzip bytes) -> new gzip bytes
    "count 2^31 in the header": lambda raw, gz: gzip.compress(struct.pack(">IIII", 0x803, 1 << 31, 28, 28) + raw[16:]),
    "sizes 2^16 x 2^16": lambda raw, gz: gzip.compress(struct.pack(">IIII", 0x803, 8, 1 << 16, 1 << 16) + raw[16:]),
    "magic wrong": lambda raw, gz: gzip.compress(b"\x00\x00\x08\x04" + raw[4:]),
    "cut in the header": lambda raw, gz: gzip.compress(raw[:10]),
    "cut in the pixels": lambda raw, gz: gzip.compress(raw[:100]),
    "gzip cut short": lambda raw, gz: gz[:len(gz) // 2],
    "not gzip": lambda raw, gz: b"\x1f\x8b" + b"\x00" * 30,
    "gzip bomb (1 GB of zeros)": lambda raw, gz: gzip.compress(struct.pack(">IIII", 0x803, 8, 28, 28) + raw[16:]
                                                              + bytes(1 << 30), compresslevel=1),
}

BIG = str(10 ** 30)
NUMBERS = {   # command line (without the number) -> values it must refuse
    ("run", "basicgan", "--data", "fake", "--epochs"): ["0", "-1", BIG],
    ("run", "basicgan", "--data", "fake", "--batch-size"): ["0", "-1", BIG],
    ("run", "basicgan", "--data", "fake", "--image-size"): ["-1", BIG],
    ("run", "basicgan", "--data", "fake", "--samples"): ["0", "-1", BIG],
    ("run", "basicgan", "--data", "fake", "--log-every"): ["0", "-1"],      # huge: logs at each epoch's end
    ("run", "basicgan", "--data", "fake", "--checkpoint-every"): ["0", "-1"],
    ("run", "basicgan", "--data", "fake", "--threads"): ["-1", BIG],
    ("run", "basicgan", "--data", "fake", "--seed"): ["-1", BIG],
    ("run", "basicgan", "--data", "fake", "--lr"): ["0", "-1", "nan", "inf"],
    ("run", "basicgan", "--data", "fake", "--collective-timeout"): ["-1", "inf", "nan"],
    ("run", "basicgan", "--data", "fake", "--budget"): ["0", "-1", "inf"],
    ("run", "basicgan", "--data", "fake", "--pack"): ["0", "-1", BIG],
    ("sample", "{weights}", "-n"): ["0", "-1", BIG],
    ("sample", "{weights}", "--seed"): ["-1", BIG],
    ("compare", "basicgan", "dcgan", "--seeds"): ["0", "-1", BIG],
    ("compare", "basicgan", "dcgan", "--epochs"): ["0", "-1", BIG],
    ("compare", "basicgan", "dcgan", "--points"): ["0", "-1", BIG],
    ("eval", "{weights}", "-n"): ["0", "-1", BIG],
}

ODD = "odd\nname-" + b"\xff\xfe".decode(errors="surrogateescape")
PATHS = {   # command line with {odd}: a path whose name holds a newline and bytes that are not UTF-8
    "sample a missing file": ["sample", "{tmp}/{odd}.safetensors"],
    "run --config a missing file": ["run", "basicgan", "--config", "{tmp}/{odd}.yaml"],
    "run --resume a missing folder": ["run", "--resume", "{tmp}/{odd}"],
    "run --data-dir a missing folder": ["run", "dcgan", "--data", "mnist", "--data-dir", "{tmp}/{odd}",
                                        "--no-download"],
    "data --out in a new folder (works)": ["data", "fake", "--out", "{tmp}/{odd}/new/grid.png"],
    "eval a missing file": ["eval", "{tmp}/{odd}.safetensors"],
}

CASES = {"config file": len(CONFIG_FILES), "weights file (sample)": len(WEIGHTS_DAMAGE),
         "checkpoint (run --resume)": len(CHECKPOINT_DAMAGE), "IDX dataset (data)": len(IDX_DAMAGE),
         "numeric arguments": sum(map(len, NUMBERS.values())), "odd paths": len(PATHS)}


# -- the check every case makes ---------------------------------------------------------------------------

@pytest.fixture
def guarded():
    """A hang becomes a failure (60 s), and an allocation of gigabytes an error (8 GB of address space)."""
    def hang(signum, frame):
        raise TimeoutError("hung")
    previous = signal.signal(signal.SIGALRM, hang)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    signal.alarm(60)
    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, hard))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def one_sentence(capsys, argv) -> str:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code in (1, 2), (code, err[-2000:])
    assert "Traceback" not in err and "internal error" not in err and "Out of memory" not in err, err[-2000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    assert len(lines[0]) < 1000, lines[0][:300]
    return lines[0]


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_a_damaged_config_file(name, tmp_path, capsys, guarded):
    filename, raw = CONFIG_FILES[name]
    path = tmp_path / filename
    path.write_bytes(raw)
    line = one_sentence(capsys, ["run", "basicgan", "--config", path, "--out", tmp_path / "run"])
    if name.endswith("with a BOM"):                        # decoded: the sentence is about the settings in it
        assert "bogus" in line, line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", WEIGHTS_DAMAGE)
def test_a_damaged_weights_file(name, weights, tmp_path, capsys, guarded):
    path = tmp_path / "g.safetensors"
    path.write_bytes(WEIGHTS_DAMAGE[name]((weights / "basicgan.safetensors").read_bytes()))
    if name in HARMLESS:                                    # not needed to sample: ignored, or one sentence
        code = main(["sample", str(path), "--out", str(tmp_path / "s.png"), "--device", "cpu"])
        assert code in (0, 1, 2) and "internal error" not in capsys.readouterr().err
        return
    one_sentence(capsys, ["sample", path, "--out", tmp_path / "s.png", "--device", "cpu"])
    assert not (tmp_path / "s.png").exists()


@pytest.mark.parametrize("name", CHECKPOINT_DAMAGE)
def test_a_damaged_checkpoint(name, weights, tmp_path, capsys, guarded):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(weights, run)
    path = run / "checkpoint.safetensors"
    path.write_bytes(CHECKPOINT_DAMAGE[name](path.read_bytes()))
    one_sentence(capsys, ["run", "--resume", run, "--epochs", "2"])


@pytest.mark.parametrize("name", IDX_DAMAGE)
def test_a_damaged_idx_dataset(name, tmp_path, capsys, guarded):
    idx_files(tmp_path / "data", IDX_DAMAGE[name])
    one_sentence(capsys, ["data", "mnist", "--data-dir", tmp_path / "data", "--no-download",
                          "--out", tmp_path / "grid.png"])


@pytest.mark.parametrize("command, value", [(c, v) for c, values in NUMBERS.items() for v in values],
                         ids=lambda x: " ".join(x) if isinstance(x, tuple) else x)
def test_a_number_at_its_edge(command, value, weights, tmp_path, capsys, guarded):
    argv = [weights / "basicgan.safetensors" if a == "{weights}" else a for a in command]
    extra = {"run": ["--out", tmp_path / "run", "--device", "cpu"], "sample": ["--out", tmp_path / "s.png"],
             "compare": ["--out", tmp_path / "cmp"], "eval": ["--device", "cpu"]}[command[0]]
    one_sentence(capsys, [*argv, value, *extra])
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("name", PATHS)
def test_an_odd_but_legal_path(name, tmp_path, capsys, guarded):
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{odd}", ODD) for a in PATHS[name]]
    if name.endswith("(works)"):                            # legal: it works, and its output names it escaped
        code = main(argv)
        out, err = capsys.readouterr()
        assert code == 0, err
        assert (tmp_path / ODD / "new" / "grid.png").is_file()
        assert "\\udcff" in out + err or "odd" not in out + err
        return
    line = one_sentence(capsys, argv)
    assert "\\n" in line or "odd" not in line                 # the newline shown escaped: still one line


def test_the_cases_are_counted():
    print("\n" + "\n".join(f"{what}: {n} cases" for what, n in CASES.items()))
    assert sum(CASES.values()) >= 100
