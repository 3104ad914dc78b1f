"""Training: one trainer for every family, checkpoints, EMA, callbacks."""

from genlab.train.callbacks import Callback
from genlab.train.checkpoint import load, save_model
from genlab.train.config import TrainConfig
from genlab.train.fit import fit
from genlab.train.trainer import Trainer

__all__ = ["Callback", "TrainConfig", "Trainer", "fit", "load", "save_model"]
