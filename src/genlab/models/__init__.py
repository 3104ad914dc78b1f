"""Every family of genlab. Importing this package registers each model by name."""

from __future__ import annotations

import importlib

# One package per family; each registers its models with @register.
_FAMILIES = ("histogram", "gmm", "flows", "autoregressive", "gan", "diffusion", "vae", "rbm")

for _family in _FAMILIES:
    importlib.import_module(f"genlab.models.{_family}")
