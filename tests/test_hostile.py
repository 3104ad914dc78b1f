"""Hostile input to the Python API: every outcome is a result or a typed error in one line.

Hypothesis generates the inputs from a fixed seed (the ``hostile`` profile in _hostile.py):
arrays of every dtype and shape with NaN, Inf and huge values, empty and one-sample data,
wrong labels, absurd settings and sampling options, random and damaged bytes as data files,
images, checkpoints and compressed files. Each case runs under a time limit, so a hang fails
too. The models are tiny and built once per module.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from hypothesis import settings as hsettings

from _hostile import HOSTILE, outcome

HOSTILE_FAST = hsettings(HOSTILE, max_examples=100)
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import genlab
from genlab import create, fit, load_data
from genlab.checks import check_choice, check_int, check_number
from genlab.registry import get

NAMES = ["toy-normal", "gmm", "histogram", "made", "realnvp", "nsf", "glow", "pixelcnn",
         "transformer", "rnn", "gan", "dcgan", "ddpm"]
DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.uint8, np.bool_,
          np.complex64]
# values a user may pass for any number or option: absurd, wrong type, huge, not finite
ODD = st.one_of(st.none(), st.booleans(), st.integers(-3, 5), st.sampled_from([2**70, -2**63]),
                st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4),
                st.lists(st.integers(-2, 3), max_size=3), st.just({"a": 1}))


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


@HOSTILE_FAST
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


@HOSTILE_FAST
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


@HOSTILE_FAST
@given(value=ODD, ge=st.integers(-2, 2), choices=st.lists(ODD, max_size=3))
def test_argument_checks(value, ge, choices):
    outcome(check_int, "k", value, ge=ge)
    outcome(check_number, "lr", value, gt=0)
    outcome(check_choice, "kind", value, choices)


@HOSTILE_FAST
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
