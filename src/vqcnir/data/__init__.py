"""Data: LOL-Blur-style night+blur synthesis and datasets. Independent of the network."""

from .degrade import (
    BlurConfig, DarkenConfig, DegradeConfig, Degrader, GTConfig, NoiseConfig, Sample, add_noise,
    blur, darken, fit_curve, gaussian_noise, le_curve, photon_levels, poisson_noise, raw_noise,
    sample_seed, scale_gt,
)
from .kernels import add_defocus, convolve, kernel_spread, rasterise, shake_kernel, shake_trajectory
from .datasets import (
    LOLBLUR_FOLDERS, LOLBlurDataset, PairedFolderDataset, SynthDataset, UnpairedFolderDataset,
    paired_augment, split_keys,
)

__all__ = [
    "BlurConfig", "DarkenConfig", "DegradeConfig", "Degrader", "GTConfig", "NoiseConfig", "Sample",
    "add_noise", "blur", "darken", "fit_curve", "gaussian_noise", "le_curve", "photon_levels",
    "poisson_noise", "raw_noise", "sample_seed", "scale_gt",
    "add_defocus", "convolve", "kernel_spread", "rasterise", "shake_kernel", "shake_trajectory",
    "LOLBLUR_FOLDERS", "LOLBlurDataset", "PairedFolderDataset", "SynthDataset",
    "UnpairedFolderDataset", "paired_augment", "split_keys",
]
