"""Random draws with a generator on one device for a model on another (:mod:`genlab.rand`).

No GPU is needed: the contract is checked on the CPU (the same bytes as torch's own call), on
the ``meta`` device (a device the CPU generator cannot draw on: the draw happens on the CPU and
is moved), and through the cross-device branch forced on the CPU. A scan of the source checks
that every draw with a ``generator=`` in the families, the trainer and the data transforms
goes through :mod:`genlab.rand`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from genlab import rand

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "genlab"
#: torch's random functions that take a generator (function form and in-place form).
TORCH_RANDOM = {"randn", "rand", "randint", "randperm", "multinomial", "bernoulli", "normal",
                "poisson", "normal_", "uniform_", "bernoulli_", "exponential_", "random_",
                "geometric_", "cauchy_", "log_normal_"}

FACTORIES = [
    ("randn", lambda m, **kw: m.randn(3, 5, **kw, dtype=torch.float64)),
    ("rand", lambda m, **kw: m.rand((4, 2), **kw, dtype=torch.float32)),
    ("randint", lambda m, **kw: m.randint(2, 9, (7,), **kw)),
    ("randperm", lambda m, **kw: m.randperm(11, **kw)),
]
WEIGHTS = torch.tensor([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1]])
FROM_INPUT = [
    ("multinomial", lambda m, **kw: m.multinomial(WEIGHTS, 5, True, **kw)),
    ("bernoulli", lambda m, **kw: m.bernoulli(WEIGHTS, **kw)),
]


def _gen(seed: int = 3) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(("name", "draw"), FACTORIES + FROM_INPUT, ids=lambda v: str(v)[:12])
def test_same_bytes_as_torch_on_the_generators_device(name, draw):
    """On the generator's own device the helper is torch's call: same values, same stream."""
    g_ours, g_torch = _gen(), _gen()
    ours, theirs = draw(rand, generator=g_ours), draw(torch, generator=g_torch)
    assert ours.dtype == theirs.dtype and ours.device == theirs.device
    assert torch.equal(ours, theirs)
    assert torch.equal(g_ours.get_state(), g_torch.get_state())


@pytest.mark.parametrize(("name", "draw"), FACTORIES, ids=lambda v: str(v)[:12])
def test_a_cpu_generator_draws_for_another_device(name, draw):
    """Asked for ``meta`` tensors with a CPU generator, the helper draws on the CPU (the
    generator advances exactly as for a CPU draw) and hands back a tensor on ``meta``."""
    g_ours, g_cpu = _gen(), _gen()
    moved = draw(rand, generator=g_ours, device="meta")
    on_cpu = draw(torch, generator=g_cpu)
    assert moved.device.type == "meta"
    assert moved.shape == on_cpu.shape and moved.dtype == on_cpu.dtype
    assert torch.equal(g_ours.get_state(), g_cpu.get_state())


@pytest.mark.parametrize(("name", "draw"), FACTORIES + FROM_INPUT, ids=lambda v: str(v)[:12])
def test_the_cross_device_branch_draws_the_same_numbers(name, draw, monkeypatch):
    """The branch taken when the devices differ (forced here on the CPU) draws with the
    generator on its device and moves the result: the numbers are the generator's."""
    expected = draw(torch, generator=_gen())
    monkeypatch.setattr(rand, "same_device", lambda a, b: False)
    assert torch.equal(draw(rand, generator=_gen()), expected)


def test_no_generator_draws_from_the_global_stream_on_the_device():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        ours = rand.randn(6, device="cpu")
        torch.manual_seed(5)
        assert torch.equal(ours, torch.randn(6))


def test_same_device():
    assert rand.same_device(torch.device("cpu"), torch.device("cpu"))
    assert not rand.same_device(torch.device("cpu"), torch.device("meta"))


def _direct_draws(path: Path) -> list[str]:
    """``torch.X(..., generator=...)`` calls in ``path``, as ``file:line torch.X``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        if node.func.attr in TORCH_RANDOM and any(k.arg == "generator" for k in node.keywords):
            if ast.unparse(node.func.value) != "rand":
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node.func)}")
    return found


def test_every_seeded_draw_of_sampling_and_training_goes_through_the_helper():
    """No family, trainer, data transform or shared block draws with ``generator=`` straight
    from torch (which fails when the generator and the model sit on different devices)."""
    files = [p for part in ("models", "train", "data", "nn") for p in (SRC / part).rglob("*.py")]
    assert len(files) > 40  # the scan sees the families
    direct = [hit for p in files for hit in _direct_draws(p)]
    assert direct == [], direct
    # The scan does find such a call where one is written.
    assert any("torch.randn" in hit for hit in _direct_draws(Path(__file__).resolve()))
    torch.randn(1, generator=_gen())  # the call the line above finds in this file
