"""Hostile input to the Python API: every outcome is a result or a typed error in one line.

Hypothesis generates the inputs from a fixed seed (the ``hostile`` profile in _hostile.py):
arrays of every dtype and shape with NaN, Inf and huge values, empty and one-sample data,
wrong labels, absurd settings and sampling options, random and damaged bytes as data files,
images, checkpoints and compressed files. Each case runs under a time limit, so a hang fails
too. The models are tiny and built once per module.
"""

from __future__ import annotations

import functools
import io
import json
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

import genlab
from _hostile import HOSTILE, outcome, time_limit
from genlab import create, fit, load_data
from genlab.checks import check_choice, check_int, check_number
from genlab.compress import compress, container, decompress
from genlab.errors import CheckpointError, UnknownNameError
from genlab.registry import get
from genlab.train import checkpoint as ckpt

NAMES = ["toy-normal", "gmm", "histogram", "made", "realnvp", "nsf", "glow", "pixelcnn",
         "transformer", "rnn", "gan", "dcgan", "ddpm"]
DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.uint8, np.bool_,
          np.complex64]
# values a user may pass for any number or option: absurd, wrong type, huge, not finite
ODD = st.one_of(st.none(), st.booleans(), st.integers(-3, 5), st.sampled_from([2**70, -2**63]),
                st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4),
                st.lists(st.integers(-2, 3), max_size=3), st.just({"a": 1}))


def cases(n: int) -> settings:
    return settings(HOSTILE, max_examples=n)


@functools.cache
def models() -> dict[str, genlab.GenerativeModel]:
    """One tiny model per family (a conditional one where the family has it), built once."""
    moons = load_data("moons", n=200)
    built = {}
    for name in NAMES:
        configs = get(name).tiny_configs()
        config = configs[-1] if name not in ("gmm", "histogram") else configs[0]
        torch.manual_seed(0)
        built[name] = create(name, **config).eval()
    fit(built["gmm"], moons)
    fit(built["histogram"], moons)
    return built


def _arrays(event_shape: tuple[int, ...]):
    """(dtype, shape): the model's event shape under a batch (0 to 4 rows), or any shape."""
    batch = hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=4)
    shapes = st.one_of(batch.map(lambda b: (*b, *event_shape)),
                       hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4))
    return st.sampled_from(DTYPES).flatmap(lambda dt: hnp.arrays(dt, shapes))


def _as_input(array: np.ndarray, how: str):
    if how == "tensor" and array.dtype != np.uint16:
        return torch.from_numpy(array.copy())
    if how == "list":
        return array.tolist()
    return array


@cases(100)
@given(data=st.data())
def test_model_inputs(data):
    name = data.draw(st.sampled_from(NAMES), "model")
    model = models()[name]
    op = data.draw(st.sampled_from(["log_prob", "log_prob_bound", "bits_per_dim", "encode",
                                    "sample"]), "op")
    y = data.draw(st.one_of(st.none(), st.integers(-2, 4), _arrays(())), "y")
    if op == "sample":
        n = data.draw(st.one_of(st.integers(-1, 4), ODD), "n")
        options = data.draw(st.dictionaries(
            st.sampled_from([*model.sample_options(), "bogus"]), ODD, max_size=2), "options")
        result, err = outcome(model.sample, n, y, generator=torch.Generator().manual_seed(0),
                              **options)
        if err is None:
            assert result.shape == (n, *model.event_shape)
        return
    if model.discrete and data.draw(st.booleans(), "in support"):
        array = data.draw(hnp.arrays(np.int64, (2, *model.event_shape),
                                     elements=st.integers(0, model.num_levels - 1)), "x")
    else:
        array = data.draw(_arrays(model.event_shape), "x")
    x = _as_input(array, data.draw(st.sampled_from(["array", "tensor", "list"]), "as"))
    result, err = outcome(getattr(model, op), x, y)
    if err is None and op != "encode":
        assert result.shape == array.shape[: array.ndim - len(model.event_shape)]


@cases(200)
@given(name=st.sampled_from(NAMES), params=st.dictionaries(
    st.sampled_from(["event_shape", "num_levels", "num_classes", "width", "depth", "bins",
                     "components", "transforms", "latent_size", "num_timesteps", "order",
                     "unknown"]), ODD, max_size=3))
def test_absurd_settings(name, params):
    # sizes stay small (ODD's integers are at most 5): a huge but valid width would only
    # allocate memory, which is not an input error
    config = {**get(name).tiny_configs()[0], **params}
    model, err = outcome(create, name, **config)
    assert err is not None or isinstance(model, genlab.GenerativeModel)


@cases(300)
@given(value=ODD, ge=st.integers(-2, 2), choices=st.lists(ODD, max_size=3))
def test_argument_checks(value, ge, choices):
    outcome(check_int, "k", value, ge=ge)
    outcome(check_number, "lr", value, gt=0)
    outcome(check_choice, "kind", value, choices)


@cases(25)
@given(x=st.one_of(_arrays((2,)), _arrays((3,))), settings=st.dictionaries(
    st.sampled_from(["steps", "batch_size", "lr", "patience", "seed", "grad_clip", "bogus"]),
    st.one_of(ODD, st.integers(1, 3)), max_size=3))
def test_fit_on_hostile_data(tmp_path_factory, x, settings):
    from genlab.data import Dataset

    settings.setdefault("steps", 2)
    if isinstance(settings["steps"], int) and not isinstance(settings["steps"], bool):
        settings["steps"] = min(settings["steps"], 3)  # a long run is a request, not a hang
    dataset, err = outcome(lambda: Dataset(x=torch.from_numpy(np.asarray(x, dtype=np.float32))
                                           if x.dtype.kind in "biuf" else x,
                                           kind="continuous"))
    if err is not None:
        return
    model = create("toy-normal", event_shape=(2,))
    outcome(fit, model, dataset, progress=False, **settings)


# ------------------------------------------------------------------------------ files
def _png(mode: str, size: tuple[int, int], seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 4), np.uint8)
    image = Image.fromarray(pixels, "RGBA").convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG of a few bytes whose header claims ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body))

    head = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


IMAGES = st.one_of(
    st.binary(max_size=64),
    st.tuples(st.sampled_from(["1", "L", "LA", "RGB", "RGBA", "P", "I;16"]),
              st.tuples(st.integers(1, 4), st.integers(1, 4)), st.integers(0, 9)).map(
        lambda a: _png(*a)),
    st.sampled_from([(20_000, 20_000), (1, 2**31 - 1), (0, 5)]).map(lambda s: _png_claiming(*s)),
    st.tuples(st.sampled_from(["L", "RGB"]), st.integers(0, 9), st.integers(8, 60)).map(
        lambda a: _png(a[0], (3, 3), a[1])[: a[2]]),  # truncated
)


NOT_NUMBERS = [np.array(["ab", "c"]), np.array([b"x"]), np.array(["2020-01-01"], dtype="M8[s]"),
               np.array([{1: 2}, None], dtype=object), np.zeros(2, dtype=[("a", "<i4")])]


@cases(150)
@given(kind=st.sampled_from(["npy", "csv", "png"]), data=st.data())
def test_data_files(tmp_path_factory, kind, data):
    folder = tmp_path_factory.mktemp("data")
    if kind == "npy":
        array = data.draw(st.one_of(_arrays((2,)), st.sampled_from(NOT_NUMBERS)), "array")
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=True)
        raw = buffer.getvalue()
        cut = data.draw(st.one_of(st.none(), st.integers(0, len(raw))), "cut")
        path = folder / "x.npy"
        path.write_bytes(raw[:cut] if cut is not None else raw)
    elif kind == "csv":
        text = data.draw(st.one_of(st.text(max_size=60), st.lists(st.lists(
            st.one_of(st.floats(), st.integers(), st.text(max_size=3)).map(str), min_size=1,
            max_size=3), max_size=5).map(lambda rows: "\n".join(map(",".join, rows)))))
        path = folder / "x.csv"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
    else:
        path = folder / "images"
        for i, raw in enumerate(data.draw(st.lists(IMAGES, min_size=1, max_size=3), "pngs")):
            (path / f"c{i % 2}" if data.draw(st.booleans()) else path).mkdir(
                parents=True, exist_ok=True)
            next(p for p in [path / f"c{i % 2}", path] if p.is_dir()).joinpath(
                f"{i}.png").write_bytes(raw)
    options = data.draw(st.fixed_dictionaries({}, optional={
        "split": st.sampled_from(["train", "all", "val", "bogus"]),
        "num_levels": ODD, "label_column": ODD}), "options")
    dataset, err = outcome(load_data, str(path), **options)
    assert err is not None or len(dataset) >= 1


@functools.cache
def run_folder(root: Path) -> Path:
    """A trained tiny run folder (toy-normal, 2 steps) with its trainer state."""
    model = create("toy-normal", event_shape=(2,))
    fit(model, load_data("moons", n=64), out=root / "run", steps=2, progress=False)
    return root / "run"


CHECKPOINT_FILES = [ckpt.CONFIG_FILE, ckpt.WEIGHTS_FILE, ckpt.TRAINER_STATE_FILE]
JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(
    max_size=5)), lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=5), inner, max_size=3), max_leaves=8)


@cases(150)
@given(which=st.sampled_from(CHECKPOINT_FILES), data=st.data())
def test_damaged_checkpoints(tmp_path_factory, which, data):
    import shutil

    good = run_folder(tmp_path_factory.getbasetemp())
    run = tmp_path_factory.mktemp("run") / "run"
    shutil.copytree(good, run)
    raw = (run / which).read_bytes()
    how = data.draw(st.sampled_from(["random", "truncate", "flip", "json"]), "how")
    if how == "random":
        raw = data.draw(st.binary(max_size=200), "bytes")
    elif how == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1), "cut")]
    elif how == "flip":
        at = data.draw(st.integers(0, len(raw) - 1), "at")
        raw = raw[:at] + bytes([raw[at] ^ data.draw(st.integers(1, 255))]) + raw[at + 1 :]
    else:
        document = json.loads((run / ckpt.CONFIG_FILE).read_text())
        key = data.draw(st.sampled_from(["model", "config", "event_shape", "init_scale"]))
        target = document if key in ("model", "config") else document["config"]
        target[key] = data.draw(JSON, "value")
        which, raw = ckpt.CONFIG_FILE, json.dumps(document).encode()
    (run / which).write_bytes(raw)
    if which == ckpt.TRAINER_STATE_FILE:
        model = create("toy-normal", event_shape=(2,))
        outcome(fit, model, load_data("moons", n=64), out=run, resume=True, steps=3,
                progress=False)
    else:
        outcome(genlab.load, run)


def _glc(shape: list[int], dtype: str, words: bytes, num_levels: int = 17) -> bytes:
    """A .glc file written field by field, so its header may claim anything."""
    head = b"".join([container.MAGIC, bytes([container.VERSION]), bytes(8),
                     container._varint(num_levels), container._varint(0),
                     bytes([len(dtype)]), dtype.encode(), bytes([len(shape)]),
                     *(container._varint(s) for s in shape), struct.pack("<I", 0),
                     container._varint(len(words) // 4)])
    return head + struct.pack("<H", zlib.crc32(head) & 0xFFFF) + words


@functools.cache
def coder_model() -> tuple[genlab.GenerativeModel, bytes]:
    torch.manual_seed(0)
    model = create("made", event_shape=(1, 4, 4), num_levels=5, width=16, depth=1).eval()
    return model, compress(model, torch.randint(0, 5, (3, 1, 4, 4)))


@cases(150)
@given(data=st.data())
def test_compressed_files(data):
    model, good = coder_model()
    how = data.draw(st.sampled_from(["random", "truncate", "flip", "header"]), "how")
    if how == "random":
        raw = data.draw(st.one_of(st.binary(max_size=100), st.binary(max_size=100).map(
            lambda b: container.MAGIC + bytes([container.VERSION]) + b)), "bytes")
    elif how == "truncate":
        raw = good[: data.draw(st.integers(0, len(good) - 1), "cut")]
    elif how == "flip":
        at = data.draw(st.integers(0, len(good) - 1), "at")
        raw = good[:at] + bytes([good[at] ^ data.draw(st.integers(1, 255))]) + good[at + 1 :]
    else:
        header, payload = container.unpack(good)
        shape = data.draw(st.one_of(st.lists(st.integers(0, 2**40), max_size=6), st.just(
            [200_000, 1, 4, 4])), "shape")
        dtype = data.draw(st.sampled_from(["<i8", "|u1", "<f4", "|O", "<U3", "V8", "x", "<M8"]))
        raw = _glc(shape, dtype, payload[: 4 * data.draw(st.integers(0, len(payload) // 4))])
    values, err = outcome(decompress, model, raw)
    assert err is not None or values.shape[-3:] == (1, 4, 4)


# ------------------------------------------------------------------------------ named cases
def test_a_short_file_claiming_200000_images_fails_at_once():
    model, good = coder_model()
    _, payload = container.unpack(good)
    bomb = _glc([200_000, 1, 4, 4], "<i8", payload[:160])
    assert len(bomb) < 200
    with time_limit(1.0):  # decoding it would take minutes
        _, err = outcome(decompress, model, bomb)
    assert "claims 3200000" in str(err)


@pytest.mark.parametrize("dtype", ["|O", "<U3", "|S2", "<M8[s]", "|V4", "not-a-dtype"])
def test_compressed_file_with_a_non_numeric_dtype_is_refused(dtype):
    model, good = coder_model()
    _, payload = container.unpack(good)
    _, err = outcome(decompress, model, _glc([3, 1, 4, 4], dtype, payload))
    assert "Expected a numeric dtype" in str(err)


class _Trap:
    """Unpickling this runs ``Path(marker).touch()``; a safe loader never does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickled_trainer_state_is_refused_without_running_it(tmp_path):
    run = tmp_path / "run"
    model = create("toy-normal", event_shape=(2,))
    fit(model, load_data("moons", n=64), out=run, steps=2, progress=False)
    marker = tmp_path / "ran"
    torch.save({"model": _Trap(marker)}, run / ckpt.TRAINER_STATE_FILE)
    _, err = outcome(fit, create("toy-normal", event_shape=(2,)), load_data("moons", n=64),
                     out=run, resume=True, steps=3, progress=False)
    assert isinstance(err, CheckpointError) and "refused without running it" in str(err)
    assert not marker.exists()


def test_pickled_weights_are_refused_without_running_them(tmp_path):
    run = run_folder(tmp_path)
    marker = tmp_path / "ran"
    (run / ckpt.WEIGHTS_FILE).write_bytes(pickle.dumps({"loc": _Trap(marker)}))
    _, err = outcome(genlab.load, run)
    assert isinstance(err, CheckpointError) and not marker.exists()


@pytest.mark.parametrize("change", ["shape", "missing", "extra", "not a tensor"])
def test_weights_that_do_not_fit_the_model_are_refused(tmp_path, change):
    run = run_folder(tmp_path)
    state = ckpt.load_weights(run / ckpt.WEIGHTS_FILE)
    if change == "shape":
        state["loc"] = torch.zeros(1, 3)
    elif change == "missing":
        del state["loc"]
    elif change == "extra":
        state["bias"] = torch.zeros(1)
    if change == "not a tensor":
        state = ckpt.load_trainer_state(run / ckpt.TRAINER_STATE_FILE)
        state["model"]["loc"] = 3.0
        torch.save(state, run / ckpt.TRAINER_STATE_FILE)
        _, err = outcome(fit, create("toy-normal", event_shape=(2,)),
                         load_data("moons", n=64), out=run, resume=True, steps=3,
                         progress=False)
    else:
        ckpt.save_weights(state, run / ckpt.WEIGHTS_FILE)
        _, err = outcome(genlab.load, run)
    assert isinstance(err, CheckpointError), err


@pytest.mark.parametrize("entry", ["model", "optimizers", "step"])
def test_trainer_state_missing_an_entry_is_refused(tmp_path, entry):
    run = run_folder(tmp_path)
    state = ckpt.load_trainer_state(run / ckpt.TRAINER_STATE_FILE)
    del state[entry]
    torch.save(state, run / ckpt.TRAINER_STATE_FILE)
    _, err = outcome(ckpt.load_trainer_state, run / ckpt.TRAINER_STATE_FILE)
    assert isinstance(err, CheckpointError) and repr(entry) in str(err)


def test_config_naming_an_unknown_class_is_refused(tmp_path):
    run = run_folder(tmp_path)
    document = json.loads((run / ckpt.CONFIG_FILE).read_text())
    document["model"] = "os.system"
    (run / ckpt.CONFIG_FILE).write_text(json.dumps(document))
    _, err = outcome(genlab.load, run)
    assert isinstance(err, UnknownNameError) and "os.system" in str(err)
