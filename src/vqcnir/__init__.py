"""vqcnir: restore dark, blurry night photos with VQCNIR (AAAI 2024).

Public API: ``load_model(weights)``, ``restore(model, image)``, ``VQCNIR``, ``VQCNIRConfig``.
"""

__version__ = "0.1.0"

from .api import load_model, restore  # noqa: E402
from .nn import VQCNIR, VQCNIRConfig  # noqa: E402

__all__ = ["VQCNIR", "VQCNIRConfig", "__version__", "load_model", "restore"]
