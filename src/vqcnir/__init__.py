"""vqcnir: restore dark, blurry night photos with VQCNIR (AAAI 2024)."""

__version__ = "0.1.0"

from .nn import VQCNIR, VQCNIRConfig  # noqa: E402

__all__ = ["VQCNIR", "VQCNIRConfig", "__version__"]
