"""Huge but valid sizes: a typed error in one line before anything large is allocated.

``create(..., width=2**40)``, ``model.sample(10**12)`` and a run folder whose ``config.json``
was edited to describe a huge model all ask for more memory than exists. Each must end in a
``ResourceError`` (or, for the run folder, a ``CheckpointError`` naming the first tensor that
differs from the weights file) quickly, with the process's peak memory barely moved: the size
is counted before torch allocates it (:mod:`genlab.allocations`, :mod:`genlab.memory`).
"""

from __future__ import annotations

import json
import resource

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from _hostile import HOSTILE, check_one_line, outcome, time_limit
from genlab import create, load
from genlab.allocations import TRIAL_META_FROM
from genlab.errors import CheckpointError, ResourceError
from genlab.registry import get
from genlab.train.checkpoint import save_model

#: Families and the settings whose values size their tensors (not loops over layers).
SIZED = {"realnvp": ["width"], "made": ["width"], "gan": ["width", "latent_size"],
         "ddpm": ["width", "num_timesteps"], "gmm": ["components"], "vae": ["latent_size"],
         "transformer": ["width"], "pixelcnn": ["width"], "rbm": ["hidden"]}
#: Peak memory (resident set) a refused request may add: far below any huge request.
PEAK_GROWTH = 512 * 2**20


def _peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _one_line_error(err: BaseException, kind: type[Exception]) -> str:
    assert isinstance(err, kind), repr(err)
    text = check_one_line(str(err))
    assert text.startswith("Expected ") and ", but found " in text, text
    return text


@pytest.fixture(scope="module")
def baseline() -> int:
    return _peak()


@pytest.mark.parametrize("width", [2**40, 2**30])
def test_create_refuses_a_model_larger_than_memory(width, baseline):
    # 2**30: the first layer (8 GiB) would fit in many machines' memory; the next ones (4 EiB)
    # do not, and the trial build sees them all before any is allocated
    with time_limit(10):
        _, err = outcome(create, "realnvp", event_shape=(2,), width=width)
    text = _one_line_error(err, ResourceError)
    assert f"width={width}" in text and "lower its sizes" in text
    assert _peak() - baseline < PEAK_GROWTH


@pytest.mark.parametrize("conditional", [False, True])
def test_sample_refuses_more_samples_than_memory(conditional, baseline):
    config = {"event_shape": (2,), "width": 4, "transforms": 1,
              "num_classes": 3 if conditional else None}
    model = create("realnvp", seed=0, **config)
    with time_limit(10):  # labels for 10**12 samples are not made either
        _, err = outcome(model.sample, 10**12, 1 if conditional else None)
    text = _one_line_error(err, ResourceError)
    assert "10000000000" in text and "lower n" in text
    assert _peak() - baseline < PEAK_GROWTH


def test_an_allocator_failure_while_sampling_is_a_resource_error(monkeypatch):
    """What a GPU reports when sampling runs out of memory becomes a typed error."""
    model = create("realnvp", seed=0, event_shape=(2,), width=4, transforms=1)

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(model, "_sample", out_of_memory)
    _, err = outcome(model.sample, 5)
    assert "Tried to allocate 20.00 GiB" in _one_line_error(err, ResourceError)
    assert isinstance(err, MemoryError)  # callers catching MemoryError keep working


def test_a_large_model_that_fits_is_built_with_the_weights_of_one_build():
    """A model past the trial threshold is built after a trial; the trial's draws are put
    back, so the seed gives the weights a single build gives."""
    config = {"event_shape": (2,), "width": 2048, "depth": 2, "transforms": 1}
    biggest = 2048 * 2048 * 4
    assert biggest >= TRIAL_META_FROM  # the hidden layer takes the trial path
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        single = get("realnvp")(**config).state_dict()
    built = create("realnvp", seed=7, **config).state_dict()
    assert built.keys() == single.keys()
    assert all(torch.equal(built[k], v) for k, v in single.items())


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    save_model(create("realnvp", seed=0, event_shape=(2,), width=8, transforms=2, depth=1), out)
    return out


@pytest.mark.parametrize(("setting", "value", "named"), [
    ("width", 2**40, "transform.bijections.0.net.linears.0.weight"),
    ("width", 16, "transform.bijections.0.net.linears.0.weight"),
    ("transforms", 3, "transform.bijections.2."),  # the first tensor of the third transform
])
def test_load_checks_an_edited_config_against_the_weights_header(run_folder, setting, value,
                                                                  named, baseline):
    path = run_folder / "config.json"
    saved = path.read_text()
    document = json.loads(saved)
    document["config"][setting] = value
    path.write_text(json.dumps(document))
    try:
        with time_limit(10):
            _, err = outcome(load, run_folder)
    finally:
        path.write_text(saved)
    text = _one_line_error(err, CheckpointError)
    assert f"tensor '{named}" in text, text
    assert _peak() - baseline < PEAK_GROWTH
    assert load(run_folder).config[setting] != value  # the restored run loads


@settings(HOSTILE, max_examples=40)
@given(data=st.data())
def test_huge_sizes_drawn(data, baseline):
    """A size setting of 2**36 to 2**62 (at least 256 GiB of float32) on one of nine
    families: a typed error in one line (``outcome`` fails on any other exception), and
    nothing huge allocated."""
    name = data.draw(st.sampled_from(sorted(SIZED)), "model")
    setting = data.draw(st.sampled_from(SIZED[name]), "setting")
    value = data.draw(st.integers(36, 62).map(lambda k: 2**k), "value")
    config = {**get(name).tiny_configs()[0], setting: value}
    model, _ = outcome(create, name, **config)
    assert model is None
    assert _peak() - baseline < PEAK_GROWTH
