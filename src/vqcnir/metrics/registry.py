"""Every metric by name, with the exact protocol it computes and how to build it.

A name means one protocol everywhere: in results, CSV/JSON headers and the docs. Nothing here
substitutes one variant for another; a metric that cannot run raises MetricUnavailable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from . import full_reference, gt_mean, temporal
from .errors import MetricUnavailable

Scorer = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]

_LUMA8 = "luma Y = round(255*(0.299 R + 0.587 G + 0.114 B)) (rgb2gray / YIQ-Y, 8-bit levels)"
_YCBCR = "Y of ITU-R BT.601 YCbCr, (65.481 R + 128.553 G + 24.966 B + 16)/255 (MATLAB rgb2ycbcr)"


@dataclass(frozen=True)
class MetricSpec:
    name: str
    reference: bool  # True: needs the ground truth
    higher_is_better: bool
    protocol: dict = field(default_factory=dict)
    pyiqa: str = ""  # the pyiqa metric this equals, or how it relates


SPECS: dict[str, MetricSpec] = {}


def _add(spec: MetricSpec) -> None:
    SPECS[spec.name] = spec


_add(MetricSpec("psnr", True, True, {
    "colour": "RGB", "data_range": 1.0, "peak": 1.0, "quantisation": "none (values as given)",
    "mean": "over all pixels and channels", "identical_images": "inf",
    "implementation": "vqcnir"}, "psnr (pyiqa adds eps=1e-8, so identical images give 80 dB)"))
_add(MetricSpec("psnr_y", True, True, {
    "colour": _YCBCR, "data_range": 1.0, "peak": 1.0, "quantisation": "none",
    "identical_images": "inf", "implementation": "vqcnir"},
    "psnry with color_space='ycbcr' (pyiqa's default 'psnry' uses YIQ-Y instead)"))
_add(MetricSpec("ssim", True, True, {
    "colour": _LUMA8, "data_range": 255, "window": "Gaussian 11x11, sigma 1.5",
    "filtering": "valid (no padding)", "downsample": False, "K1": 0.01, "K2": 0.03,
    "cs_clamped_at_0": True, "implementation": "vqcnir"}, "ssim"))
_add(MetricSpec("ssim_rgb", True, True, {
    "colour": "RGB, each channel round(255*c)", "data_range": 255,
    "window": "Gaussian 11x11, sigma 1.5", "filtering": "valid (no padding)", "downsample": False,
    "K1": 0.01, "K2": 0.03, "cs_clamped_at_0": True, "channel_mean": True,
    "implementation": "vqcnir"}, "ssimc"))
for _net, _trunk in (("alex", "AlexNet"), ("vgg", "VGG16")):
    _add(MetricSpec(f"lpips_{_net}", True, False, {
        "variant": f"LPIPS v0.1, {_trunk} trunk (ImageNet weights from torchvision)",
        "input": "RGB in [0,1] mapped to [-1,1]", "spatial_mean": True,
        "implementation": "lpips package"}, "lpips" if _net == "alex" else "lpips-vgg"))
    _add(MetricSpec(f"stlpips_{_net}", True, False, {
        "variant": f"shift-tolerant LPIPS vST0.0, {_trunk} trunk (anti-aliased, stride-1 + BlurPool)",
        "weights": f"stlpips-pytorch 0.0.2: weights/vST0.0/{_net}_shift_tolerant.pth",
        "input": "RGB in [0,1] mapped to [-1,1]", "spatial_mean": True,
        "implementation": "vqcnir (STLPIPS module)"}, "stlpips" if _net == "alex" else "stlpips-vgg"))
# each image metric above again, after the GT-mean protocol (gt_mean.py): gt_mean_psnr, ...
for _base in [s for s in SPECS.values() if s.reference]:
    _add(MetricSpec(gt_mean.PREFIX + _base.name, True, _base.higher_is_better,
                    {"gt_mean": gt_mean.PROTOCOL, **_base.protocol}, f"{_base.pyiqa}, after GT-mean scaling"))
_add(MetricSpec("niqe", False, False, {
    "colour": _LUMA8, "blocks": "96x96 (48x48 at half scale), image cropped to whole blocks",
    "scales": "2, second by MATLAB imresize(0.5) bicubic with antialiasing",
    "window": "Gaussian 7x7, sigma 7/6, replicate borders",
    "pristine_model": "MATLAB NIQE modelparameters.mat (via BasicSR, Apache-2.0)",
    "undefined_when": "fewer than two 96x96 blocks have any texture (a black, white or uniform image)",
    "implementation": "vqcnir (MATLAB-faithful port)"},
    "niqe_matlab (same algorithm; pyiqa's 'niqe' is a slightly different port)"))
for _grid in (8, 4):
    _add(MetricSpec(f"blockiness{_grid}", False, False, {
        "colour": "BT.601 luma 0.299 R + 0.587 G + 0.114 B on 0-255, not rounded",
        "grid": f"{_grid} px from the top-left corner (steps from pixel {_grid}k-1 to {_grid}k cross it)",
        "value": "(mean |step| across grid lines + 0.01) / (mean |step| inside blocks + 0.01), "
                 "horizontal and vertical steps pooled; 1.0 = no grid",
        "implementation": "vqcnir"}, "none (no pyiqa equivalent)"))
_add(MetricSpec("musiq", False, True, {"variant": "MUSIQ, KonIQ-10k weights",
                                       "implementation": "pyiqa"}, "musiq"))
_add(MetricSpec("nrqm", False, True, {"variant": "NRQM (Ma et al.)", "implementation": "pyiqa"}, "nrqm"))
_add(MetricSpec("pi", False, False, {"variant": "PI = ((10 - NRQM) + NIQE) / 2, pyiqa's NRQM and NIQE",
                                    "implementation": "pyiqa"}, "pi"))
_add(MetricSpec("brisque", False, False, {"variant": "BRISQUE, pyiqa's SVR weights",
                                         "implementation": "pyiqa"}, "brisque"))

for _name, _protocol in temporal.PROTOCOLS.items():  # scored by metrics.video, on a whole sequence
    _add(MetricSpec(_name, False, False, {**_protocol, "implementation": "vqcnir (metrics/temporal.py)"}))
    _add(MetricSpec(f"{_name}_gt", True, False, {**_protocol, "video": "the ground truth's own value",
                                                 "implementation": "vqcnir (metrics/temporal.py)"}))

DEFAULT_FULL_REFERENCE = ("psnr", "ssim")
DEFAULT_NO_REFERENCE = ("niqe",)


def spec(name: str) -> MetricSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise MetricUnknown(name) from None


class MetricUnknown(MetricUnavailable):
    def __init__(self, name: str):
        super().__init__(f"unknown metric {name!r}; known: {', '.join(SPECS)}")


def build(name: str, device: str | torch.device = "cpu") -> Scorer:
    """A scorer ``f(restored, gt) -> float64 tensor (N,)``; MetricUnavailable if it cannot run."""
    spec(name)
    if name.startswith(gt_mean.PREFIX):
        base = build(name.removeprefix(gt_mean.PREFIX), device)
        return lambda restored, gt: base(gt_mean.match_gt_mean(restored, gt), gt)
    simple = {"psnr": full_reference.psnr, "psnr_y": full_reference.psnr_y,
              "ssim": full_reference.ssim, "ssim_rgb": full_reference.ssim_rgb}
    if name in simple:
        return simple[name]
    if name in ("blockiness8", "blockiness4"):
        from .blockiness import blockiness

        grid = int(name[len("blockiness"):])
        return lambda restored, gt=None: blockiness(restored, grid)
    if name.split("_gt")[0] in temporal.TEMPORAL:
        raise MetricUnavailable(f"{name} scores a sequence: give --restored VIDEO (or frames with --metrics {name})")
    if name == "niqe":
        from .niqe import niqe

        return lambda restored, gt=None: niqe(restored)
    if name.startswith(("lpips_", "stlpips_")):
        from .lpips import load_lpips, load_stlpips

        net = name.split("_", 1)[1]
        model = load_stlpips(net, device=device) if name.startswith("st") else load_lpips(net, device)

        def run(restored: torch.Tensor, gt: torch.Tensor | None) -> torch.Tensor:
            with torch.no_grad():
                return model(restored.float().to(device), gt.float().to(device)).to(torch.float64).cpu()

        return run
    from .optional import load_pyiqa

    scorer = load_pyiqa(name, device)
    return lambda restored, gt=None: scorer(restored.to(device))


def check(name: str) -> None:
    """Raise MetricUnavailable with the reason unless ``name`` can run here (cheap: loads nothing)."""
    spec(name)
    name = name.removeprefix(gt_mean.PREFIX)
    if name.startswith("stlpips_"):
        from .lpips import stlpips_weights_path

        stlpips_weights_path(name.split("_", 1)[1])
    elif name.startswith("lpips_"):
        from .lpips import check_lpips

        check_lpips(name.split("_", 1)[1])
    elif name in ("musiq", "nrqm", "pi", "brisque"):
        from .optional import check_pyiqa

        check_pyiqa(name)
