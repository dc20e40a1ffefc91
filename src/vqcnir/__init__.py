"""vqcnir: restore dark, blurry night photos with VQCNIR (AAAI 2024).

Public API: ``load_model(weights)``, ``restore(model, image)``, ``VQCNIR``, ``VQCNIRConfig``,
``keep_freed_memory()`` (faster CPU restores; see ``vqcnir.allocator``).
Imported lazily, so ``vqcnir --help`` does not wait for torch.
"""

__version__ = "0.1.0"

_EXPORTS = {
    "load_model": "vqcnir.api",
    "restore": "vqcnir.api",
    "VQCNIR": "vqcnir.nn",
    "VQCNIRConfig": "vqcnir.nn",
    "keep_freed_memory": "vqcnir.allocator",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vqcnir' has no attribute {name!r}")
