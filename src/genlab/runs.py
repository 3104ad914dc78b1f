"""Run folders: the data a run was trained on, and what ``--resume`` checks first."""

from __future__ import annotations

from pathlib import Path

from genlab.base import GenerativeModel
from genlab.data import Dataset, load_data
from genlab.errors import ConfigError
from genlab.train import checkpoint as ckpt


def run_data_name(run_dir: str | Path) -> str:
    """The name of the data set (or file) a run was trained on, from its ``config.json``."""
    name = (ckpt.read_config(run_dir).get("data") or {}).get("name")
    if not name:
        raise ConfigError(
            f"Expected the name of the training data in {Path(run_dir) / ckpt.CONFIG_FILE}, "
            "but found none."
        )
    return name


def run_data(run_dir: str | Path, split: str = "train") -> Dataset:
    """A split of the data a run was trained on (``"train"``, ``"val"``, ``"test"``); for a
    run trained with conditions, the paired digits with them (``y`` a Conditions)."""
    data = ckpt.read_config(run_dir).get("data") or {}
    if data.get("conditions"):
        from genlab.data.conditions import paired_digits

        kinds = tuple(data["conditions"])
        info = data.get("info") or {}
        return paired_digits(split, kinds, seed=info.get("seed", 0),
                             mask=info.get("mask", "half")).to_dataset(kinds)
    return load_data(run_data_name(run_dir), split=split)


def resume_model(out: str | Path, name: str, data_name: str) -> GenerativeModel | None:
    """The model of the run in ``out``, rebuilt from its ``config.json`` to be resumed.

    Returns None when ``out`` holds no run yet (a fresh run starts).

    Raises:
        ConfigError: the run holds another model, or was trained on other data.
        CheckpointError: its config is missing or corrupt.
    """
    from genlab.registry import create

    out = Path(out)
    if not (out / ckpt.CONFIG_FILE).is_file():
        return None
    saved = ckpt.read_config(out)
    if saved["model"] != name:
        raise ConfigError(f"{out} holds a {saved['model']!r} run, not {name!r}.")
    trained_on = (saved.get("data") or {}).get("name", data_name)
    if data_name != trained_on:
        raise ConfigError(f"{out} was trained on {trained_on!r}, not {data_name!r}.")
    return create(name, **saved["config"])
