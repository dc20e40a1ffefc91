"""One switch for the CPU inference kernels that replace slow oneDNN/torchvision paths.

They give the same results as the plain ops (tests compare them); benchmarks turn them off to
time the network the way the authors' release runs it.
"""

import torch

ENABLED = True


def on_cpu(t: torch.Tensor) -> bool:
    # an ONNX export writes the plain op; the graph runtime chooses its own kernels
    return ENABLED and t.device.type == "cpu" and not torch.onnx.is_in_onnx_export()
