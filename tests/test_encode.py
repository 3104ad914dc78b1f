"""``encode(x)`` over the registry: every family that declares an encoder gives finite,
deterministic features of one fixed size k per sample, each sample's features independent of
the rest of its batch, and refuses bad input with the documented errors; every other family
raises ``NoRepresentation``. A family registered later is checked with no edit here."""

from __future__ import annotations

import pytest
import torch

from genlab.errors import ConfigError, DataError, NoRepresentation, ShapeError
from genlab.registry import get
from test_contract import CASES, labels, make_data


def build(name, config):
    torch.manual_seed(0)
    model = get(name)(**config)
    model.initialize(make_data(config))  # data-dependent layers (ActNorm, scales) are set
    return model


@pytest.mark.parametrize(("name", "config"), CASES)
def test_encode_contract(name, config):
    model = build(name, config)
    x = make_data(config, n=7, seed=1).x
    if not model.has_encoder:
        with pytest.raises(NoRepresentation):
            model.encode(x, labels(model, 7))
        return
    model.train()  # encode must switch to evaluation itself (dropout, batch norm) and back
    features = model.encode(x, labels(model, 7))
    assert model.training
    assert features.dim() == 2 and features.shape[0] == 7 and features.shape[1] >= 1
    assert torch.isfinite(features).all()
    assert torch.equal(model.encode(x, labels(model, 7)), features), "not deterministic"
    # k is fixed, and a sample's features do not depend on the other samples of its batch
    part = model.encode(x[:3], labels(model, 3))
    torch.testing.assert_close(part, features[:3], rtol=1e-5, atol=1e-5)
    # extra batch dims are restored
    batched = model.encode(x[:6].reshape(2, 3, *x.shape[1:]),
                           None if not model.conditional else labels(model, 6).reshape(2, 3))
    assert batched.shape == (2, 3, features.shape[1])

    with pytest.raises(ShapeError):
        model.encode(torch.zeros(4, 3, 5, 7), labels(model, 4))
    bad = x.clone()
    bad[0].view(-1)[0] = float("nan")
    with pytest.raises(DataError):
        model.encode(bad, labels(model, 7))
    with pytest.raises(ConfigError):
        model.encode(x, labels(model, 7), no_such_option=1)
    if model.conditional:
        with pytest.raises(DataError):
            model.encode(x)  # a conditional model's features need y


def test_diffusion_encodes_at_a_chosen_noise_step():
    name, config = next((n, c) for n, c in (p.values for p in CASES)
                        if n == "ddpm" and len(c["event_shape"]) == 3 and "num_classes" not in c)
    model = build(name, config)
    x = make_data(config, n=5).x
    t_last = model.schedule.num_timesteps - 1
    early, late = model.encode(x, t=0), model.encode(x, t=t_last)
    assert early.shape == late.shape and not torch.equal(early, late)
    with pytest.raises(ConfigError):
        model.encode(x, t=t_last + 1)
    with pytest.raises(ConfigError):
        model.encode(x, t=-1)
