"""The "GT-mean" protocol of low-light papers (LLFlow, Retinexformer): score an image after
scaling it to its ground truth's mean brightness.

Synthetic night pairs darken every photo to a random exposure, so how bright the original was
cannot be read from the night image; this takes global brightness out of the score and leaves
structure, noise and colour. ``gt_mean_<metric>`` (e.g. ``gt_mean_psnr``) is a metric of its own
in the registry; ``vqcnir evaluate --gt-mean`` applies the protocol to every metric of a run.
"""

from __future__ import annotations

import torch

from ..imagefiles import LUMA_WEIGHTS

PREFIX = "gt_mean_"
PROTOCOL = ("each restored image scaled by mean_luma(gt) / mean_luma(restored) (BT.601 luma) "
            "and clipped to [0, 1] before scoring")


def match_gt_mean(restored: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """``restored`` scaled so its mean luma equals ``gt``'s, each image of a batch on its own,
    clipped to [0, 1]. A black output cannot be scaled and is scored as it is."""
    luma = restored.new_tensor(LUMA_WEIGHTS).view(1, 3, 1, 1)
    mean_restored = (restored * luma).sum(1).flatten(1).mean(1)
    mean_gt = (gt.to(restored.dtype) * luma).sum(1).flatten(1).mean(1)
    scalable = mean_restored > 0
    scale = torch.where(scalable, mean_gt / torch.where(scalable, mean_restored, 1.0), 1.0)
    scaled = (restored * scale.view(-1, 1, 1, 1)).clamp(0, 1)
    return torch.where(scalable.view(-1, 1, 1, 1), scaled, restored)
