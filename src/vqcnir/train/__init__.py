"""Training of both VQCNIR stages: config schema, data, the DDP trainer and the `train` command."""

from .config import TrainConfig, build_config, load_config, shipped_presets
from .trainer import FROZEN_STAGE2, Trainer, run_training

__all__ = ["FROZEN_STAGE2", "TrainConfig", "Trainer", "build_config", "load_config", "run_training",
           "shipped_presets"]
