"""Vector quantiser with the codebook learnt in stage 1 and the stage-2 code-alignment loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C) Gram matrix normalised by the number of pixels."""
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (h * w)


class VectorQuantizer(nn.Module):
    """Nearest-codeword quantiser with a straight-through gradient.

    ``forward`` returns ``(quantized, loss, indices)`` with indices shaped (B, 1, H, W).
    Without ``gt_indices`` the loss is the VQ-VAE codebook + beta * commitment loss (stage 1).
    With them (stage 2) it is the code-alignment loss: beta * MSE to the GT's codewords plus a
    Gram-matrix (texture) term, as in the authors' release.
    """

    def __init__(self, num_codes: int, code_dim: int, beta: float = 0.25):
        super().__init__()
        self.num_codes = num_codes
        self.code_dim = code_dim
        self.beta = beta
        self.embedding = nn.Embedding(num_codes, code_dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / num_codes, 1.0 / num_codes)

    def nearest_indices(self, z: torch.Tensor) -> torch.Tensor:
        """Indices (B, 1, H, W) of the nearest codewords of z (B, D, H, W)."""
        b, _, h, w = z.shape
        # Distances in float32 even under autocast: reduced precision would change which code wins.
        with torch.autocast(z.device.type, enabled=False):
            flat = z.float().permute(0, 2, 3, 1).reshape(-1, self.code_dim)
            codebook = self.embedding.weight.float()
            # Same expansion as the release so near-ties resolve the same way.
            dist = (
                flat.pow(2).sum(1, keepdim=True)
                + codebook.pow(2).sum(1)
                - 2 * flat @ codebook.t()
            )
            return dist.argmin(1).reshape(b, 1, h, w)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codewords (B, D, H, W) for indices (B, 1, H, W)."""
        return self.embedding(indices[:, 0]).permute(0, 3, 1, 2)

    def forward(self, z: torch.Tensor, gt_indices: torch.Tensor | None = None):
        indices = self.nearest_indices(z)
        z_q = self.lookup(indices)
        if gt_indices is None:
            loss = F.mse_loss(z_q, z.detach()) + self.beta * F.mse_loss(z_q.detach(), z)
        else:
            target = self.lookup(gt_indices).detach()
            loss = self.beta * F.mse_loss(z, target) + F.mse_loss(gram_matrix(z), gram_matrix(target))
        z_q = z + (z_q - z).detach()
        return z_q, loss, indices
