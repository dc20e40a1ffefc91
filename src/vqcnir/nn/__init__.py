"""The VQCNIR network: pure torch modules, no I/O."""

from .config import PRESETS, VQCNIRConfig, preset
from .vqcnir import VQCNIR, MainDecoder
from .vqgan import VQGAN

__all__ = ["PRESETS", "VQCNIR", "VQCNIRConfig", "VQGAN", "MainDecoder", "preset"]
