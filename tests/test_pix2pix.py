"""pix2pix: the U-Net and PatchGAN shapes, conditional pairs, the L1 term, noise and learning."""

from __future__ import annotations

import torch

from genlab import create
from genlab.data.conditions import paired_digits
from genlab.models.gan.unet import PatchDiscriminator, UNetGenerator
from genlab.nn.text import Tokenizer


def paired(n: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Training digits with their sketches and a short prompt naming the digit."""
    data = paired_digits("train", ("sketch",), seed=0)
    ids, mask = Tokenizer().encode([f"a {k}" for k in data.y[:n].tolist()])
    return data.x[:n], {"sketch": data.conditions["sketch"][:n], "prompt": ids,
                        "prompt_mask": mask, "label": data.y[:n]}


def model(**settings):
    torch.manual_seed(0)
    config = {"event_shape": (1, 8, 8), "num_levels": 17, "conditions": ("sketch", "prompt"),
              "width": 8, "latent_size": 2, "condition_size": 8, **settings}
    return create("pix2pix", **config)


def test_unet_and_patchgan_shapes():
    g = UNetGenerator(2, 1, 8, 8, width=4, vector_size=3, latent_size=2, dropout=0.5)
    out = g(torch.rand(5, 2, 8, 8), torch.randn(5, 3), torch.randn(5, 2))
    assert out.shape == (5, 1, 8, 8) and out.abs().max() < 1
    d = PatchDiscriminator(3, 8, 8, width=4, vector_size=3)
    logits = d(torch.rand(5, 2, 8, 8), out, torch.randn(5, 3))
    assert logits.shape == (5, 16)  # a 4 x 4 grid of patch decisions for 8 x 8 images


def test_discriminator_judges_pairs_not_images_alone():
    m = model()
    x, y = paired(4)
    real = m.critic(x / 8 - 1, y)
    swapped = dict(y, sketch=y["sketch"].flip(0))  # the same images under other sketches
    assert not torch.allclose(real, m.critic(x / 8 - 1, swapped))


def test_generator_loss_is_adversarial_plus_lambda_l1():
    x, y = paired(8)
    plain, weighted = model(l1_weight=0.0), model(l1_weight=7.0)
    torch.manual_seed(1)
    loss0, logs0 = plain.generator_loss(x, y)
    torch.manual_seed(1)
    loss7, logs7 = weighted.generator_loss(x, y)
    assert abs(loss0.item() - logs0["g_loss"]) < 1e-6
    assert abs(loss7.item() - (logs7["g_loss"] + 7.0 * logs7["l1"])) < 1e-5
    assert logs0 == logs7  # same weights, same noise: only lambda differs


def test_objectives_own_disjoint_parameters_covering_the_model():
    m = model()
    d, g = m.objectives()
    ids = [{id(p) for p in o.parameters} for o in (d, g)]
    assert not ids[0] & ids[1]
    assert ids[0] | ids[1] == {id(p) for p in m.parameters()}


def test_samples_are_seeded_levels_and_vary_with_the_noise():
    m = model().eval()
    _, y = paired(6)
    y.pop("label")
    one = m.sample(6, y, generator=torch.Generator().manual_seed(0))
    again = m.sample(6, y, generator=torch.Generator().manual_seed(0))
    other = m.sample(6, y, generator=torch.Generator().manual_seed(1))
    assert torch.equal(one, again) and not torch.equal(one, other)
    assert torch.equal(one, one.round()) and one.min() >= 0 and one.max() <= 16


def test_a_short_training_follows_the_paired_images():
    m = model(width=8, dropout=0.1, conditions=("sketch", "label"), num_classes=10)
    x, y = paired(128)
    y = {"sketch": y["sketch"], "label": y["label"]}
    d_obj, g_obj = m.objectives()
    opts = [torch.optim.Adam(o.parameters, lr=2e-3, betas=(0.5, 0.999)) for o in (d_obj, g_obj)]
    g = torch.Generator().manual_seed(0)
    m.train()
    first = None
    for _ in range(100):
        rows = torch.randint(0, 128, (32,), generator=g)
        batch = {k: v[rows] for k, v in y.items()}
        for obj, opt in zip((d_obj, g_obj), opts, strict=True):
            opt.zero_grad()
            loss, logs = obj.loss(x[rows], batch)
            loss.backward()
            opt.step()
        first = logs["l1"] if first is None else first
    m.eval()
    with torch.no_grad():
        fake = m.generate(y, 128, generator=torch.Generator().manual_seed(2))
    l1 = (fake - (2 * x + 1) / 17 + 1).abs().mean().item()
    # The untrained generator's L1 is ~0.75 (outputs near 0 against mostly -1 pixels); the
    # trained one must at least halve it on its own training pairs.
    assert l1 < first / 2, (first, l1)
