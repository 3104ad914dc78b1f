"""Conditional diffusion: guidance per condition (its two defining identities and its
formula), what a missing condition means, and a trained model that follows its sketch."""

from __future__ import annotations

import pytest
import torch

from genlab import create, fit
from genlab.conditioning import random_conditions
from genlab.data.conditions import paired_digits, sketch
from genlab.errors import ConfigError, DataError
from genlab.metrics.obedience import sketch_iou

KINDS = ("label", "sketch", "lowres", "mask", "prompt")


@pytest.fixture(scope="module")
def model():
    m = create("ddpm", event_shape=(1, 8, 8), num_levels=17, num_classes=3, conditions=KINDS,
               num_timesteps=10, width=8, text_width=8, condition_dropout=0.2, seed=0)
    with torch.no_grad():  # cross-attention starts as the identity: give it some effect
        for p in m.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    return m.eval()


def guesses(model, y, guidance):
    x_t = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        return model._guesses(x_t, 4, model._check_y(y, 6), guidance)[1]  # eps


def conditions(n=6):
    return random_conditions(KINDS, n, event_shape=(1, 8, 8), num_classes=3, num_levels=17,
                             generator=torch.Generator().manual_seed(3))


def test_guidance_one_is_the_conditional_prediction(model):
    y = conditions()
    plain = guesses(model, y, 1.0)
    assert torch.allclose(guesses(model, y, {k: 1.0 for k in KINDS}), plain, atol=1e-6)
    assert torch.allclose(guesses(model, y, {"sketch": 1, "prompt": 1.0}), plain, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_guidance_zero_for_a_condition_drops_it(model, kind):
    y = conditions()
    dropped = guesses(model, y.drop(kind), 1.0)
    assert torch.allclose(guesses(model, y, {kind: 0.0}), dropped, atol=1e-5)
    assert not torch.allclose(guesses(model, y, 1.0), dropped, atol=1e-5)  # it mattered


def test_guidance_formula(model):
    y = conditions()
    full = guesses(model, y, 1.0)
    no_sketch, no_prompt = guesses(model, y.drop("sketch"), 1.0), \
        guesses(model, y.drop("prompt"), 1.0)
    expected = full + 1.0 * (full - no_sketch) + 2.0 * (full - no_prompt)
    assert torch.allclose(guesses(model, y, {"sketch": 2.0, "prompt": 3.0}), expected,
                          atol=1e-5)
    # one scale: every condition dropped together, eps_u + w (eps_c - eps_u)
    none = guesses(model, y.drop(KINDS), 1.0)
    assert torch.allclose(guesses(model, y, 2.5), none + 2.5 * (full - none), atol=1e-5)


def test_guidance_and_missing_conditions_are_checked(model):
    y = {"sketch": torch.zeros(8, 8), "prompt": "a thin 3"}
    assert model.sample(2, y, steps=2, sampler="ddim", guidance={"prompt": 2}).shape == \
        (2, 1, 8, 8)  # label, lowres and mask are absent: trained with dropout
    with pytest.raises(ConfigError, match="guidance for the model's conditions"):
        model.sample(2, y, guidance={"colour": 2})
    with pytest.raises(ConfigError, match="number >= 0"):
        model.sample(2, y, guidance={"prompt": -1})
    strict = create("ddpm", event_shape=(1, 8, 8), num_levels=17, conditions=("sketch",),
                    num_timesteps=4, width=8, condition_dropout=0.0, seed=0)
    with pytest.raises(ConfigError, match="trained to drop"):
        strict.sample(1, {"sketch": torch.zeros(8, 8)}, guidance=2.0)
    with pytest.raises(DataError, match="trained without dropping sketch"):
        strict.sample(1, {})
    with pytest.raises(ConfigError, match="denoiser 'unet'"):
        create("ddpm", event_shape=(1, 8, 8), conditions=("sketch",), denoiser="mlp")


def test_a_trained_model_follows_its_sketch():
    """Samples drawn for test sketches agree with their own sketch (IoU of the samples'
    sketches) more than with another test digit's: the paired difference over 64 sketches
    must exceed 5 standard errors."""
    train = paired_digits("train", ("sketch",), seed=0).to_dataset(("sketch",))
    given = paired_digits("test", ("sketch",), seed=0).conditions["sketch"][:64]
    model = create("ddpm", data=train, seed=0, num_timesteps=20, width=8, prediction="v",
                   schedule="cosine")
    fit(model, train, steps=30, batch_size=32, lr=3e-3, seed=0, progress=False, keep="last")
    x = model.sample(64, {"sketch": given}, sampler="dpm-solver", steps=10,
                     generator=torch.Generator().manual_seed(0))
    own = sketch_iou(sketch(x), given)
    other = sketch_iou(sketch(x), given.roll(1, 0))  # another digit's sketch: chance level
    diff = own - other
    assert diff.mean() > 5 * diff.std() / 64**0.5


def test_text_encoder_starts_from_contrastive_pretraining():
    from genlab.models.diffusion.conditional import pretrain_text

    paired = paired_digits("val", ("prompt",), seed=0)
    model = create("ddpm", event_shape=(1, 8, 8), num_levels=17, conditions=("prompt",),
                   num_timesteps=4, width=8, text_width=16, seed=0)
    before = [p.detach().clone() for p in model.conditioner.text.parameters()]
    losses = pretrain_text(model, paired.x, [paired.prompts(v) for v in range(2)], steps=15,
                           generator=torch.Generator().manual_seed(0))
    assert len(losses) == 15 and sum(losses[-5:]) < sum(losses[:5])  # it learned
    after = list(model.conditioner.text.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    with pytest.raises(ConfigError, match="prompt condition"):
        pretrain_text(create("ddpm", event_shape=(2,), num_timesteps=4), paired.x, [])
