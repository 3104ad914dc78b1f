"""Bits-back coding with a VAE: exact round trips, a rate equal to the -ELBO plus the
documented initial bits, and clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genlab import create, fit, load_data
from genlab.compress import bitsback, compress_file, decompress_file
from genlab.compress.container import unpack
from genlab.errors import CheckpointError, ConfigError, DataError
from genlab.train.checkpoint import save_model


def tiny(seed: int = 0, **kw):
    torch.manual_seed(seed)
    config = dict(event_shape=(1, 4, 4), num_levels=5, width=8, depth=1, latent_size=3)
    config.update(kw)
    return create("vae", **config).eval()


@pytest.mark.parametrize("config", [
    {},
    {"network": "conv", "likelihood": "logistic"},
    {"event_shape": (7,), "num_levels": 2, "num_classes": 3},
])
def test_round_trip_is_bit_exact(config):
    model = tiny(**config)
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, model.num_levels, (2, 9, *model.event_shape), generator=g)
    y = None if not model.conditional else torch.randint(0, 3, (2, 9), generator=g)
    data = bitsback.compress(model, x.to(torch.int16), y)
    out, labels = bitsback.decompress_with_labels(model, data)
    assert out.dtype == np.int16 and np.array_equal(out, x.numpy())
    if y is not None:
        assert np.array_equal(labels, y.reshape(-1).numpy())
    for bits in (1, 5):
        again = bitsback.decompress(model, bitsback.compress(model, x, y, latent_bits=bits))
        assert torch.equal(again, x)


@pytest.fixture(scope="module")
def trained():
    """A small VAE fitted briefly to the digits training split, and the test split."""
    train, test = load_data("digits", split="train"), load_data("digits", split="test")
    torch.manual_seed(0)
    model = create("vae", data=train, width=64, depth=1, latent_size=8, network="mlp")
    fit(model, train, steps=200, batch_size=64, lr=3e-3, progress=False)
    return model.eval(), test


def log_weights(model, x, draws, generator):
    """``draws`` samples of log p(x, z) - log q(z|x), z ~ q: ``(draws, n)`` nats."""
    with torch.no_grad():
        mean, std = model.posterior(x)
        eps = torch.randn(draws, *mean.shape, generator=generator)
        z = mean + std * eps  # (draws, n, k)
        params = model.decoder_params(z.reshape(-1, z.shape[-1]))
        rec = model._reconstruction(params, x.repeat(draws, 1, 1, 1)).reshape(draws, -1)
        return rec - 0.5 * (z**2).sum(-1) + 0.5 * (eps**2).sum(-1) + torch.log(std).sum(-1)


def test_rate_is_the_elbo_plus_the_initial_bits(trained):
    model, test = trained
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        elbo = torch.stack([model.elbo(test.x, generator=g) for _ in range(100)]).mean(0)
    neg_elbo_bits = -elbo.sum().item() / math.log(2)
    # the rate is one draw of -log2 w per image: its standard error over the split
    se = (log_weights(model, test.x, 64, g).var(0).sum().sqrt() / math.log(2)).item()
    assert 4 * se < 0.01 * neg_elbo_bits  # the 1% test below is not drowned in noise
    data = bitsback.compress(model, test.x)
    assert torch.equal(bitsback.decompress(model, data), test.x)
    _, payload = unpack(data)
    coded = 8 * len(payload) - bitsback.initial_bits(model.latent_size)
    assert abs(coded - neg_elbo_bits) < 0.01 * neg_elbo_bits


def test_files_dispatch_to_bits_back_and_report_the_bound(trained, tmp_path):
    model, test = trained
    save_model(model, tmp_path / "run")
    x = test.x[:20].numpy().astype(np.uint8)
    np.save(tmp_path / "x.npy", x)
    result = compress_file(tmp_path / "run", tmp_path / "x.npy", tmp_path / "x.glc")
    assert result.initial_bits == bitsback.initial_bits(8) == 32 * math.ceil((24 * 8 + 64) / 32)
    expected = model.bits_per_dim(test.x[:20]).mean().item()
    assert math.isclose(result.model_bits_per_dim, expected, rel_tol=1e-5)
    assert "-ELBO" in str(result)
    decompress_file(tmp_path / "run", tmp_path / "x.glc", tmp_path / "back.npy")
    back = np.load(tmp_path / "back.npy")
    assert back.dtype == np.uint8 and np.array_equal(back, x)


def test_bad_input_is_refused():
    model = tiny()
    x = torch.randint(0, 5, (4, 1, 4, 4))
    with pytest.raises(ConfigError, match="Expected a VAE with num_levels"):
        bitsback.compress(create("made", event_shape=(4,), num_levels=3), x)
    with pytest.raises(ConfigError, match="without num_levels"):
        bitsback.compress(create("vae", event_shape=(2,)), torch.zeros(3, 2))
    with pytest.raises(ConfigError, match="latent_bits"):
        bitsback.compress(model, x, latent_bits=0)
    with pytest.raises(DataError):
        bitsback.compress(model, x + 5)
    with pytest.raises(DataError):
        bitsback.compress(model, np.array(["a"]))
    data = bitsback.compress(model, x)
    with pytest.raises(CheckpointError, match="another model"):
        bitsback.decompress(tiny(seed=1), data)
    damaged = bytearray(data)
    damaged[-3] ^= 0x55  # a payload word: the header still parses
    with pytest.raises(DataError):
        bitsback.decompress(model, bytes(damaged))
    with pytest.raises(DataError):
        bitsback.decompress(model, data[:-4])
