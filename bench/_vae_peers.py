"""genlab's VAE and pythae's VAE on binarised digits, side by side (used by bench_vae.py).

Like for like: both libraries get the same networks (genlab's MLP encoder and decoder, handed
to pythae as custom networks with genlab's initial weights copied in), the Bernoulli
likelihood, Adam, the same learning rate, steps, batches and seed; the training loop is shared
and each library computes its own loss (genlab: ``training_loss``, -ELBO per dimension;
pythae: ``model(DatasetOutput(data=x)).loss``, -ELBO per image). Both are scored by one
evaluator from their encoder and decoder outputs.

What a user gets: genlab's recipe (``create("vae", data=train)`` and ``fit``, validation
split, early stopping) against pythae's defaults (``VAEConfig`` and its default MLP networks,
``BaseTrainerConfig``, ``TrainingPipeline`` keeping the best model on the validation split),
with ``reconstruction_loss="bce"`` (its default, "mse", gives no likelihood of binary pixels),
for about the same wall time: pythae's epochs are chosen from the time of one epoch.
"""

from __future__ import annotations

import io
import logging
import math
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import replace

import torch
import torch.nn.functional as F
from pythae.data.datasets import DatasetOutput
from pythae.models import VAE, VAEConfig
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn import BaseDecoder, BaseEncoder
from pythae.pipelines import TrainingPipeline
from pythae.trainers import BaseTrainerConfig

from genlab import create, fit
from genlab.recipes import recipe_for

logging.getLogger("pythae").setLevel(logging.WARNING)
THRESHOLD = 8  # digits levels 0..16; a pixel is on at level >= 8


def binarise(data):
    """Digits with pixels on (1) at level >= 8: a binary data set of the same images."""
    return replace(data, x=(data.x >= THRESHOLD).to(data.x.dtype), num_levels=2)


class Encoder(BaseEncoder):
    """genlab's MLP encoder for pythae: the same layers on the same standardised input."""

    def __init__(self, genlab_encoder: torch.nn.Module) -> None:
        super().__init__()
        self.net = genlab_encoder.net

    def forward(self, x):
        mean, log_var = self.net(x.flatten(1) * 2.0 - 1.0).chunk(2, dim=1)
        return ModelOutput(embedding=mean, log_covariance=log_var)


class Decoder(BaseDecoder):
    """genlab's MLP decoder for pythae, giving probabilities (its Bernoulli loss takes those)."""

    def __init__(self, genlab_decoder: torch.nn.Module) -> None:
        super().__init__()
        self.net = genlab_decoder.net

    def forward(self, z):
        return ModelOutput(reconstruction=torch.sigmoid(self.net(z)).reshape(-1, 1, 8, 8))


def genlab_vae(train, latent: int, width: int, seed: int):
    torch.manual_seed(seed)
    return create("vae", data=train, network="mlp", likelihood="bernoulli",
                  latent_size=latent, width=width, depth=1)


def pythae_twin(model):
    """A pythae VAE whose networks are deep copies of ``model``'s (same weights)."""
    import copy

    config = VAEConfig(input_dim=(1, 8, 8), latent_dim=model.latent_size,
                       reconstruction_loss="bce")
    return VAE(config, encoder=Encoder(copy.deepcopy(model.encoder)),
               decoder=Decoder(copy.deepcopy(model.decoder)))


def parameters(module) -> int:
    return sum(p.numel() for p in module.parameters())


def train_like_for_like(train, *, steps: int, batch: int, lr: float, latent: int, width: int,
                        seed: int) -> dict:
    """Both models trained in one loop, steps interleaved, on the same batches."""
    ours = genlab_vae(train, latent, width, seed)
    theirs = pythae_twin(ours)
    assert parameters(ours) == parameters(theirs), (parameters(ours), parameters(theirs))
    opt_ours = torch.optim.Adam(ours.parameters(), lr=lr)
    opt_theirs = torch.optim.Adam(theirs.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    x_all = train.x.float()
    seconds = {"genlab": 0.0, "pythae": 0.0}
    ours.train()
    theirs.train()
    torch.manual_seed(seed + 1)
    for _ in range(steps):
        x = x_all[torch.randint(len(x_all), (batch,), generator=g)]  # (batch, 1, 8, 8)
        start = time.perf_counter()
        loss, _ = ours.training_loss(x, None)
        opt_ours.zero_grad()
        loss.backward()
        opt_ours.step()
        seconds["genlab"] += time.perf_counter() - start
        start = time.perf_counter()
        loss = theirs(DatasetOutput(data=x)).loss
        opt_theirs.zero_grad()
        loss.backward()
        opt_theirs.step()
        seconds["pythae"] += time.perf_counter() - start
    return {"genlab": (ours, seconds["genlab"]), "pythae": (theirs, seconds["pythae"])}


def posterior_and_loglik(model):
    """``(posterior(x) -> (mean, std), loglik(z, x) -> (n,))`` of either library's VAE."""
    if isinstance(model, VAE):
        def posterior(x):
            out = model.encoder(x)
            return out.embedding, torch.exp(0.5 * out.log_covariance)

        def loglik(z, x):
            p = model.decoder(z).reconstruction.flatten(1)
            # pythae's own reconstruction term (F.binary_cross_entropy), negated
            return -F.binary_cross_entropy(p, x.flatten(1), reduction="none").sum(1)
        return posterior, loglik

    def posterior(x):
        return model.posterior(x)

    def loglik(z, x):
        return model._reconstruction(model.decoder_params(z), x)
    return posterior, loglik


@torch.no_grad()
def bounds(model, x: torch.Tensor, ks, *, draws: int, seed: int = 0) -> dict[str, float]:
    """Test bits/dim of -ELBO (closed-form KL, reconstruction over ``draws`` draws) and of
    -IWAE-K, one evaluator for both libraries."""
    model.eval()
    posterior, loglik = posterior_and_loglik(model)
    x = x.float()
    g = torch.Generator().manual_seed(seed)
    mean, std = posterior(x)  # (n, latent) each
    kl = 0.5 * (mean**2 + std**2 - 1 - 2 * torch.log(std)).sum(1)
    rec = torch.stack([loglik(mean + std * torch.randn(mean.shape, generator=g), x)
                       for _ in range(draws)]).mean(0)
    scale = x[0].numel() * math.log(2)
    out = {"ELBO": (kl - rec).mean().item() / scale}
    normal = torch.distributions.Normal(0.0, 1.0)
    for k in ks:
        log_w = []
        for _ in range(k):
            z = mean + std * torch.randn(mean.shape, generator=g)
            log_w.append(loglik(z, x) + normal.log_prob(z).sum(1)
                         - torch.distributions.Normal(mean, std).log_prob(z).sum(1))
        iwae = torch.logsumexp(torch.stack(log_w), 0) - math.log(k)
        out[f"IWAE-{k}"] = -iwae.mean().item() / scale
    return out


def user_runs(train, val, *, steps: int | None, seed: int) -> dict:
    """Each library's defaults: genlab's recipe, then pythae for about the same wall time."""
    torch.manual_seed(seed)
    ours = create("vae", data=train)
    start = time.perf_counter()
    fit(ours, train, val_data=val, progress=False, seed=seed,
        **({"steps": steps} if steps else {}))
    ours_s = time.perf_counter() - start
    config = VAEConfig(input_dim=(1, 8, 8), reconstruction_loss="bce")
    defaults = BaseTrainerConfig()
    xtr, xva = train.x.float().numpy(), val.x.float().numpy()

    def run_pythae(epochs: int):
        torch.manual_seed(seed)
        model = VAE(config)
        with tempfile.TemporaryDirectory() as tmp:
            pipeline = TrainingPipeline(model=model, training_config=BaseTrainerConfig(
                output_dir=tmp, num_epochs=epochs, seed=seed))
            start = time.perf_counter()
            with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
                pipeline(train_data=xtr, eval_data=xva)  # its per-epoch bars and logs
            return pipeline.trainer._best_model, time.perf_counter() - start

    _, one = run_pythae(1)
    epochs = max(1, round(ours_s / one))
    theirs, theirs_s = run_pythae(epochs)
    recipe = recipe_for(type(ours), train)
    settings = {
        "genlab": f"recipe {dict(recipe.params)}, training {dict(recipe.train)}"
                  + (f", steps {steps}" if steps else ""),
        "pythae": f"VAEConfig defaults (latent {config.latent_dim}, default MLP networks) with "
                  f"bce; Adam lr {defaults.learning_rate}, batch "
                  f"{defaults.per_device_train_batch_size}, {epochs} epochs, best on val",
    }
    return {"genlab": (ours, ours_s, settings["genlab"]),
            "pythae": (theirs, theirs_s, settings["pythae"])}
