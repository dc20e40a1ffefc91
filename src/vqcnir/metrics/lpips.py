"""LPIPS distances, labelled by the exact variant computed.

* ``stlpips_alex`` / ``stlpips_vgg`` — shift-tolerant LPIPS (Ghildyal & Liu, ECCV 2022), computed
  by :class:`STLPIPS`, our own module, with the trunk and linear-layer weights shipped in the
  ``stlpips-pytorch`` wheel (BSD-2-Clause; only its ``.pth`` files are read, none of its code is
  imported). Works offline.
* ``lpips_alex`` / ``lpips_vgg`` — the original LPIPS v0.1 (Zhang et al., CVPR 2018) through the
  ``lpips`` package. It needs torchvision's ImageNet AlexNet / VGG16 weights in the local torch
  hub cache; without them the metric is reported unavailable — never replaced by another variant.

:class:`STLPIPS` is an ordinary differentiable ``nn.Module`` taking RGB in [0, 1], so it can
serve as a perceptual training loss (``load_stlpips("vgg")``).
"""

from __future__ import annotations

import importlib.util
import os
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import MetricUnavailable

_CHANNELS = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
_VGG_SLICES = (4, 10, 18, 26, 34)  # layer index at which each of the five slices ends
_TORCHVISION_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}


class BlurPool(nn.Module):
    """Anti-aliased stride-2 downsampling: reflect-pad 2, then a 3×3 binomial filter, stride 2."""

    def __init__(self, channels: int):
        super().__init__()
        b = torch.tensor([1.0, 2.0, 1.0])
        k = torch.outer(b, b) / 16.0
        self.register_buffer("filt", k.expand(channels, 1, 3, 3).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), self.filt, stride=2, groups=x.shape[1])


def _sequential(layers: list[tuple[int, nn.Module]]) -> nn.Sequential:
    return nn.Sequential(OrderedDict((str(i), m) for i, m in layers))


def _alex_trunk() -> nn.ModuleDict:
    """Shift-tolerant AlexNet: stride-1 convs/pools followed by BlurPool, five ReLU taps."""
    layers = [
        nn.Conv2d(3, 64, 11, stride=1, padding=2), BlurPool(64), nn.ReLU(),
        nn.MaxPool2d(3, stride=1), BlurPool(64), nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(),
        nn.MaxPool2d(3, stride=1), BlurPool(192), nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),
    ]
    ends = (3, 7, 11, 13, 15)
    return _slices(layers, ends)


def _vgg_trunk() -> nn.ModuleDict:
    """Shift-tolerant VGG16: each 2×2 max-pool becomes max-pool stride 1 + BlurPool."""
    layers: list[nn.Module] = []
    cin = 3
    for v in _VGG16:
        if v == "M":
            layers += [nn.MaxPool2d(2, stride=1), BlurPool(cin)]
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU()]
            cin = v
    return _slices(layers, _VGG_SLICES)


def _slices(layers: list[nn.Module], ends: tuple[int, ...]) -> nn.ModuleDict:
    out, start = OrderedDict(), 0
    for n, end in enumerate(ends, 1):
        out[f"slice{n}"] = _sequential([(i, layers[i]) for i in range(start, end)])
        start = end
    return nn.ModuleDict(out)


class _Linear(nn.Module):
    """1×1 conv to one channel; ``model.1`` so the weights' keys load unchanged."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = _sequential([(0, nn.Identity()), (1, nn.Conv2d(channels, 1, 1, bias=False))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _unit_normalize(f: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


class STLPIPS(nn.Module):
    """Shift-tolerant LPIPS distance between RGB images in [0, 1].

    ``forward(x, y)`` takes two N×3×H×W tensors and returns N distances (lower = more alike);
    it is differentiable with respect to both inputs. Build a ready-to-use one with
    :func:`load_stlpips`; the bare constructor leaves the weights random.
    """

    def __init__(self, net: str = "vgg"):
        super().__init__()
        if net not in _CHANNELS:
            raise ValueError(f"net must be 'alex' or 'vgg', got {net!r}")
        self.net_name = net
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self.net = _alex_trunk() if net == "alex" else _vgg_trunk()
        self.lins = nn.ModuleList(_Linear(c) for c in _CHANNELS[net])

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = ((2 * x - 1) - self.shift) / self.scale
        taps = []
        for block in self.net.values():
            h = block(h)
            taps.append(h)
        return taps

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fx, fy = self.features(x), self.features(y)
        total = x.new_zeros(x.shape[0])
        for lin, a, b in zip(self.lins, fx, fy):
            d = (_unit_normalize(a) - _unit_normalize(b)) ** 2
            total = total + lin(d).mean(dim=(1, 2, 3))
        return total

    def load_published(self, state: dict[str, torch.Tensor]) -> None:
        """Load a state dict in the ``stlpips-pytorch`` layout (strict)."""
        mapped = {}
        for k, v in state.items():
            if k.startswith("scaling_layer."):
                k = k[len("scaling_layer."):]
            elif k.startswith("lin"):
                k = f"lins.{k[3]}.{k[5:]}"
            mapped[k] = v
        self.load_state_dict(mapped, strict=True)


def stlpips_weights_path(net: str) -> Path:
    """Where the ``stlpips-pytorch`` wheel keeps its weights; MetricUnavailable if not installed."""
    spec = importlib.util.find_spec("stlpips_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise MetricUnavailable(
            f"stlpips_{net} needs the 'stlpips-pytorch' package for its weights: "
            "pip install --no-deps stlpips-pytorch==0.0.2"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "weights" / "vST0.0" / f"{net}_shift_tolerant.pth"
    if not path.is_file():
        raise MetricUnavailable(f"stlpips_{net}: weights file missing from the stlpips-pytorch install: {path}")
    return path


def load_stlpips(net: str = "vgg", weights: str | os.PathLike | None = None,
                 device: str | torch.device = "cpu") -> STLPIPS:
    """A shift-tolerant LPIPS module with its published weights, in eval mode, frozen."""
    path = Path(weights) if weights is not None else stlpips_weights_path(net)
    model = STLPIPS(net)
    model.load_published(torch.load(path, map_location="cpu", weights_only=True))
    model.requires_grad_(False)
    return model.eval().to(device)


def torchvision_weights_path(net: str) -> Path:
    """Where torchvision would cache the ImageNet trunk that LPIPS ``net`` needs."""
    return Path(torch.hub.get_dir()) / "checkpoints" / _TORCHVISION_FILES[net]


class _LPIPSPackage(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.model(x, y, normalize=True).flatten()


def check_lpips(net: str) -> None:
    """Raise MetricUnavailable unless the original LPIPS (``lpips_<net>``) can run offline here."""
    if importlib.util.find_spec("lpips") is None:
        raise MetricUnavailable(f"lpips_{net} needs the 'lpips' package: pip install --no-deps lpips==0.1.4")
    trunk = torchvision_weights_path(net)
    if not trunk.is_file():
        raise MetricUnavailable(
            f"lpips_{net} needs torchvision's ImageNet {'AlexNet' if net == 'alex' else 'VGG16'} "
            f"weights at {trunk} (set TORCH_HOME to where they are); they are not there and are "
            f"not downloaded. stlpips_{net} is a different metric, not a stand-in."
        )


def load_lpips(net: str, device: str | torch.device = "cpu") -> nn.Module:
    """Original LPIPS v0.1 through the ``lpips`` package; MetricUnavailable when it cannot run here."""
    check_lpips(net)
    import warnings

    import lpips

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's "pretrained is deprecated" warnings
        model = lpips.LPIPS(net=net, version="0.1", verbose=False)
    model.requires_grad_(False)
    return _LPIPSPackage(model).eval().to(device)
