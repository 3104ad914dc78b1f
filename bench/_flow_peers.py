"""The flows of bench_flows.py: one shared architecture per kind, built in each library.

Every contender is a :class:`Contender`: a module, its per-sample NLL and its sampler. The
like-for-like architectures (:data:`ARCHS`) are built as closely as each library allows;
:func:`user_contenders` gives each peer's documented default flow and optimizer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version

import torch

from genlab.models.flows import MAF, NSF, RealNVP

# The shared architectures, genlab's names: conditioner MLPs of `depth` hidden layers of
# `width` ReLU units, a standard Gaussian base, splines on [-bound, bound] with `bins` bins.
ARCHS: dict[str, dict] = {
    "realnvp": {"transforms": 8, "width": 64, "depth": 2},
    "nsf": {"transforms": 4, "width": 64, "depth": 2, "bins": 8, "bound": 5.0},
    "maf": {"transforms": 5, "width": 64, "depth": 2},
}
GENLAB_CLASSES = {"realnvp": RealNVP, "nsf": NSF, "maf": MAF}
PEERS = ("zuko", "nflows", "normflows")


def peer_versions() -> dict[str, str]:
    return {name: version(name) for name in PEERS}


@dataclass
class Contender:
    """One library's flow behind three callables: loss, sampler, parameters."""

    library: str
    module: torch.nn.Module
    nll: Callable[[torch.Tensor], torch.Tensor]  # per-sample negative log-likelihood
    sample: Callable[[int], torch.Tensor]
    lr: float = 1e-3
    batch: int = 256
    optimizer: torch.optim.Optimizer | None = None
    step_times: list[float] = field(default_factory=list)
    diverged: int | None = None  # the first step with a non-finite loss
    steps: int = 0
    max_steps: int | None = None  # a contender timed only: it stops after this many steps

    def __post_init__(self) -> None:
        if self.optimizer is None:  # what the peers' documentation shows: plain torch Adam
            self.optimizer = torch.optim.Adam(self.module.parameters(), lr=self.lr)

    @property
    def params(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    def step(self, x: torch.Tensor) -> None:
        """One Adam step on the batch ``x`` ``(b, 2)``, timed."""
        if self.max_steps is not None and self.steps >= self.max_steps:
            return
        t0 = time.perf_counter()
        loss = self.nll(x).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step_times.append(time.perf_counter() - t0)
        self.steps += 1
        if self.diverged is None and not torch.isfinite(loss):
            self.diverged = self.steps


def genlab_flow(arch: str, **overrides) -> torch.nn.Module:
    return GENLAB_CLASSES[arch](event_shape=(2,), **{**ARCHS[arch], **overrides})


def wrap_genlab(model) -> Contender:
    # _log_prob skips the public validation, as the peers' log_prob does not check inputs.
    return Contender("genlab", model, lambda x: -model._log_prob(x, None),
                     lambda n: model.sample(n))


# ------------------------------------------------------------------------------- zuko
def _zuko(flow) -> Contender:
    return Contender("zuko", flow, lambda x: -flow().log_prob(x),
                     lambda n: flow().sample((n,)))


def zuko_flow(arch: str) -> Contender:
    import zuko

    a = ARCHS[arch]
    hidden = (a["width"],) * a["depth"]
    if arch == "realnvp":
        flow = zuko.flows.RealNVP(features=2, transforms=a["transforms"], hidden_features=hidden)
    elif arch == "nsf":  # zuko's splines act on [-5, 5], as genlab's and nflows' here
        flow = zuko.flows.NSF(features=2, transforms=a["transforms"], bins=a["bins"],
                              hidden_features=hidden)
    else:
        flow = zuko.flows.MAF(features=2, transforms=a["transforms"], hidden_features=hidden)
    return _zuko(flow)


# ------------------------------------------------------------------------------- nflows
class _NflowsMLP(torch.nn.Module):
    """nflows' MLP with the context argument its coupling transforms pass."""

    def __init__(self, i: int, o: int, hidden: list[int]) -> None:
        super().__init__()
        from nflows.nn.nets import MLP

        self.mlp = MLP([i], [o], hidden_sizes=hidden)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        return self.mlp(x)


def _nflows(layers: list) -> Contender:
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow
    from nflows.transforms.base import CompositeTransform

    flow = Flow(CompositeTransform(layers), StandardNormal([2]))
    return Contender("nflows", flow, lambda x: -flow.log_prob(x), lambda n: flow.sample(n))


def nflows_flow(arch: str) -> Contender:
    from nflows.transforms import autoregressive, coupling
    from nflows.transforms.permutations import ReversePermutation

    a = ARCHS[arch]
    hidden = [a["width"]] * a["depth"]

    def net(i: int, o: int) -> torch.nn.Module:
        return _NflowsMLP(i, o, hidden)

    def mask(i: int) -> torch.Tensor:
        return torch.tensor([(j + i) % 2 for j in range(2)])

    if arch == "realnvp":
        layers = [coupling.AffineCouplingTransform(mask(i), net) for i in range(a["transforms"])]
    elif arch == "nsf":
        layers = [coupling.PiecewiseRationalQuadraticCouplingTransform(
            mask(i), net, num_bins=a["bins"], tails="linear", tail_bound=a["bound"])
            for i in range(a["transforms"])]
    else:
        layers = []
        for i in range(a["transforms"]):
            if i:
                layers.append(ReversePermutation(features=2))
            # num_blocks hidden-to-hidden layers after the input layer: depth - 1.
            layers.append(autoregressive.MaskedAffineAutoregressiveTransform(
                features=2, hidden_features=a["width"], num_blocks=a["depth"] - 1,
                use_residual_blocks=False))
    return _nflows(layers)


# ---------------------------------------------------------------------------- normflows
def normflows_flow(arch: str) -> Contender | None:
    """normflows' RealNVP; its spline and autoregressive layers use residual nets only."""
    if arch != "realnvp":
        return None
    import normflows as nf

    a = ARCHS[arch]
    layers = []
    for _ in range(a["transforms"]):
        mlp = nf.nets.MLP([1, *([a["width"]] * a["depth"]), 2], init_zeros=True)
        layers += [nf.flows.AffineCouplingBlock(mlp), nf.flows.Permute(2, mode="swap")]
    flow = nf.NormalizingFlow(nf.distributions.DiagGaussian(2, trainable=False), layers)
    return Contender("normflows", flow, lambda x: -flow.log_prob(x),
                     lambda n: flow.sample(n)[0])


def peer_flows(arch: str, seed: int) -> list[Contender]:
    """The peers' builds of ``arch``, each initialised from ``torch.manual_seed(seed)``."""
    made = []
    for make in (zuko_flow, nflows_flow, normflows_flow):
        torch.manual_seed(seed)
        made.append(make(arch))
    return [c for c in made if c is not None]


def plain_loop_genlab(arch: str, seed: int, steps: int) -> Contender:
    """genlab's flow in the peers' loop with the optimizer ``fit`` builds (fused Adam), for
    the first ``steps`` steps: the difference to the ``fit`` row is the trainer's own cost."""
    torch.manual_seed(seed)
    c = wrap_genlab(genlab_flow(arch))
    c.library, c.max_steps = "genlab model, plain loop", steps
    c.optimizer = torch.optim.Adam(c.module.parameters(), lr=c.lr, fused=True)
    return c


# ------------------------------------------------------------------------ what a user gets
def user_contenders() -> list[Contender]:
    """Each peer's flow and optimizer as its README shows them (Adam at lr 1e-3)."""
    import zuko
    from nflows.transforms.autoregressive import MaskedAffineAutoregressiveTransform
    from nflows.transforms.permutations import ReversePermutation

    # zuko's README: NSF with 3 transforms and 3 hidden layers of 128 units.
    out = [_zuko(zuko.flows.NSF(features=2, transforms=3, hidden_features=[128] * 3))]
    # nflows' README: 5 x (reverse permutation, MAF layer with 4 hidden features).
    layers = []
    for _ in range(5):
        layers += [ReversePermutation(features=2),
                   MaskedAffineAutoregressiveTransform(features=2, hidden_features=4)]
    out.append(_nflows(layers))
    return out
