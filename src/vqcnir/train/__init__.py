"""Training of both VQCNIR stages: config schema, data, the DDP trainer and the `train` command."""

from .config import TrainConfig, build_config, load_config, shipped_presets
from .loop import Trainer, run_training
from .stage2 import FROZEN_STAGE2

__all__ = ["FROZEN_STAGE2", "TrainConfig", "Trainer", "build_config", "load_config", "run_training",
           "shipped_presets"]
