"""Night + blur synthesis in the manner of LOL-Blur, on float RGB images H×W×3 in [0, 1].

Three stages, each a plain function usable alone (`darken`, `blur`, `add_noise`), plus the ground
truth dimming (`scale_gt`). `Degrader` draws every random choice from one integer seed into a
JSON-friendly dict first and then applies the stages, so a record of the dict alone rebuilds the
pair. Order: darken → blur → noise. The camera integrates the *night* scene, so the lamps that
darkening keeps bright are what smears into streaks over a dark background; sensor noise comes
last because it is added at read-out.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import VQCNIRError
from ..imagefiles import luma, to_uint
from .color import (
    lightness, lightness_from_luminance, linear_to_srgb, luminance,
    luminance_from_lightness, srgb_to_linear,
)
from .kernels import convolve, shake_kernel

Range = tuple[float, float]


# ----------------------------------------------------------------------------- configuration
@dataclass
class DarkenConfig:
    exposure: Range = (0.05, 0.30)     # target mean lightness (CIE L*/100) of the non-light pixels
    # exposure as a fraction of the scene's own mean lightness instead: a dark scene gives a
    # darker night image, so the night image says how bright the scene was (the absolute target
    # hides it, and a network can only learn an average brightness: dark scenes turn to haze)
    relative: bool = False
    light_threshold: float = 0.97      # L above this is a light source and keeps its lightness
    light_band: float = 0.02           # soft ramp below the threshold: no hard halo around lamps
    curve_steps: int = 10              # iterations of the LE curve x ← x + r(x² − x)
    ratio_space: str = "linear"        # "linear": scale linear RGB so L* is exactly the target;
                                       # "srgb": scale sRGB values by L_dark / L (LEDNet's reading)


@dataclass
class BlurConfig:
    p: float = 1.0                     # probability that a sample is blurred at all
    length: Range = (3.0, 31.0)        # extent of the shake trajectory in pixels
    steps: int = 48                    # random-walk steps of the trajectory
    momentum: float = 0.8              # how smooth the hand is (0: jittery, 1: straight line)
    defocus_p: float = 0.3
    defocus_sigma: Range = (0.3, 1.0)  # Gaussian sigma in pixels
    highlight_alpha: Range = (0.25, 1.75)  # RSBlur: saturated pixels get +alpha in linear light
    gamma: float = 2.2                 # linearisation used for integrating the exposure


@dataclass
class NoiseConfig:
    model: str = "lolblur"             # "lolblur" (Gaussian or Poisson), "raw", or "none"
    gaussian_p: float = 0.5            # else Poisson
    gaussian_sigma: Range = (0.0, 8.0)  # in 8-bit levels: sigma/255
    poisson_scale: Range = (0.1, 1.2)
    grey_p: float = 0.3                # same noise on all channels
    raw_shot: Range = (1e-4, 1.2e-2)   # log-uniform shot-noise gain (raw model)
    raw_red_gain: Range = (1.9, 2.4)
    raw_blue_gain: Range = (1.5, 1.9)


@dataclass
class GTConfig:
    scale: Range = (0.9, 0.9)          # like high_sharp_scaled: a slightly dimmer ground truth


@dataclass
class DegradeConfig:
    darken: DarkenConfig = field(default_factory=DarkenConfig)
    blur: BlurConfig = field(default_factory=BlurConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    gt: GTConfig = field(default_factory=GTConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> "DegradeConfig":
        """Build from a (YAML/JSON) dict; unknown keys are a user error, not silently ignored."""
        data = data or {}
        parts = {}
        for name, sub in (("darken", DarkenConfig), ("blur", BlurConfig),
                          ("noise", NoiseConfig), ("gt", GTConfig)):
            values = dict(data.get(name) or {})
            known = {f.name: f for f in dataclasses.fields(sub)}
            unknown = sorted(set(values) - set(known))
            if unknown:
                raise VQCNIRError(f"unknown synthesis option {name}.{unknown[0]} "
                                  f"(known: {', '.join(known)})")
            for key, value in values.items():
                if isinstance(known[key].default, tuple):
                    if not (isinstance(value, (list, tuple)) and len(value) == 2):
                        raise VQCNIRError(f"synthesis option {name}.{key} must be a range [low, high]")
                    values[key] = (float(value[0]), float(value[1]))
            parts[name] = sub(**values)
        unknown = sorted(set(data) - set(parts))
        if unknown:
            raise VQCNIRError(f"unknown synthesis section {unknown[0]!r} "
                              "(known: darken, blur, noise, gt)")
        cfg = cls(**parts)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        for name in ("darken", "blur", "noise", "gt"):
            sub = getattr(self, name)
            for f in dataclasses.fields(sub):
                v = getattr(sub, f.name)
                if isinstance(v, tuple) and v[0] > v[1]:
                    raise VQCNIRError(f"synthesis option {name}.{f.name}: low {v[0]} > high {v[1]}")
        if self.darken.ratio_space not in ("linear", "srgb"):
            raise VQCNIRError("darken.ratio_space must be 'linear' or 'srgb'")
        if self.noise.model not in ("lolblur", "raw", "none"):
            raise VQCNIRError("noise.model must be 'lolblur', 'raw' or 'none'")
        lo, hi = self.darken.exposure
        if not 0.0 < lo <= hi < 1.0:
            raise VQCNIRError("darken.exposure must lie in (0, 1)")


# ----------------------------------------------------------------------------- darkening
def le_curve(x: np.ndarray, r: float, steps: int = 10) -> np.ndarray:
    """Zero-DCE's light-enhancement curve applied `steps` times; r > 0 darkens, r < 0 brightens."""
    for _ in range(steps):
        x = x + r * (x * x - x)
    return x


def _light_weight(lum: np.ndarray, threshold: float, band: float) -> np.ndarray:
    """1 for light sources (kept as they are), 0 for the scene, a ramp in between."""
    if band <= 0:
        return (lum > threshold).astype(np.float32)
    return np.clip((lum - (threshold - band)) / band, 0.0, 1.0).astype(np.float32)


def fit_curve(light: np.ndarray, exposure: float, *, light_threshold: float = 0.97,
              light_band: float = 0.02, steps: int = 10, relative: bool = False) -> float:
    """The constant r that brings the mean lightness of the non-light pixels to `exposure`
    (`relative`: to `exposure` times their mean lightness now).

    Bisection on a 1024-bin histogram: the curve is monotone in r, and the histogram makes each
    trial cost a thousand values instead of a megapixel."""
    scene = light[light <= light_threshold]
    if scene.size == 0:
        return 0.0
    hist, edges = np.histogram(scene, bins=1024, range=(0.0, 1.0))
    centers = (edges[:-1] + edges[1:]) / 2.0
    w = _light_weight(centers, light_threshold, light_band)
    p = hist / hist.sum()
    if relative:
        exposure *= float((p * centers).sum())

    def mean_after(r: float) -> float:
        return float((p * (w * centers + (1 - w) * le_curve(centers, r, steps))).sum())

    lo, hi = -1.0, 1.0  # mean_after is decreasing in r
    if mean_after(lo) <= exposure:
        return lo
    if mean_after(hi) >= exposure:
        return hi
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if mean_after(mid) > exposure:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def darken(rgb: np.ndarray, exposure: float, *, light_threshold: float = 0.97,
           light_band: float = 0.02, steps: int = 10, ratio_space: str = "linear",
           r: float | None = None) -> tuple[np.ndarray, float]:
    """Darken to a target exposure on lightness, keeping light sources and hue.

    Returns the dark image and the curve parameter r (fitted unless given)."""
    lin = srgb_to_linear(rgb)
    y = luminance(lin)
    light = lightness_from_luminance(y)
    if r is None:
        r = fit_curve(light, exposure, light_threshold=light_threshold,
                      light_band=light_band, steps=steps)
    w = _light_weight(light, light_threshold, light_band)
    light_dark = w * light + (1 - w) * le_curve(light, r, steps)
    if ratio_space == "linear":
        # One factor for all three linear channels: chromaticity (hue, saturation) is unchanged
        # and the result's L* is exactly light_dark.
        ratio = luminance_from_lightness(light_dark) / np.maximum(y, 1e-8)
        out = linear_to_srgb(lin * ratio[..., None])
    else:
        ratio = light_dark / np.maximum(light, 1e-8)
        out = rgb * ratio[..., None]
    return np.clip(out, 0.0, 1.0).astype(np.float32), float(r)


# ----------------------------------------------------------------------------- blur
def blur(rgb: np.ndarray, kernel: np.ndarray, *, highlight_alpha: float = 0.0,
         light_threshold: float = 0.97, gamma: float = 2.2,
         pads: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Integrate the exposure in linear light; clipped lights get their energy back first
    (RSBlur) so that they smear into bright streaks instead of grey smudges. `pads`: see
    `kernels.convolve` (default: same-size output with reflected borders)."""
    lin = np.power(np.clip(rgb, 0.0, 1.0), gamma, dtype=np.float32)
    if highlight_alpha > 0:
        mask = (lightness(rgb) > light_threshold).astype(np.float32)
        lin = lin + highlight_alpha * mask[..., None]
    out = convolve(lin, kernel, pads)
    return np.power(np.clip(out, 0.0, 1.0), 1.0 / gamma, dtype=np.float32)


# ----------------------------------------------------------------------------- noise


def photon_levels(rgb: np.ndarray) -> int:
    """Photon count per unit intensity: distinct 8-bit values rounded up to a power of two
    (the LOL-Blur recipe: darker images have fewer levels, hence relatively stronger noise)."""
    q = to_uint(rgb, 8)
    distinct = int(np.count_nonzero(np.bincount(q.ravel(), minlength=256)))
    return int(2 ** math.ceil(math.log2(max(distinct, 1))))


def gaussian_noise(rgb: np.ndarray, sigma: float, rng: np.random.Generator,
                   grey: bool = False) -> np.ndarray:
    shape = rgb.shape[:2] + (1,) if grey else rgb.shape
    noise = rng.standard_normal(shape, dtype=np.float32) * np.float32(sigma)
    return np.clip(rgb + noise, 0.0, 1.0)


def poisson_noise(rgb: np.ndarray, scale: float, rng: np.random.Generator, grey: bool = False,
                  levels: int | None = None) -> np.ndarray:
    levels = photon_levels(rgb) if levels is None else levels
    base = luma(rgb)[..., None] if grey else rgb
    noise = rng.poisson(np.clip(base, 0.0, None) * levels).astype(np.float32) / levels - base
    return np.clip(rgb + np.float32(scale) * noise, 0.0, 1.0)


def _conv3(plane: np.ndarray, k: np.ndarray) -> np.ndarray:
    p = np.pad(plane, 1, mode="reflect")
    h, w = plane.shape
    return sum(k[i, j] * p[i:i + h, j:j + w] for i in range(3) for j in range(3) if k[i, j])


def raw_noise(rgb: np.ndarray, shot: float, read: float, red_gain: float, blue_gain: float,
              rng: np.random.Generator, gamma: float = 2.2) -> np.ndarray:
    """Poisson–Gaussian noise in a simulated raw space (RSBlur / Unprocessing style).

    sRGB → linear → undo white balance → RGGB mosaic; noise variance shot·x + read; saturated
    photosites stay clean; the noise (not the image) is demosaicked bilinearly and put back, so
    it gets a camera's colour and spatial correlation without softening the picture."""
    h, w = rgb.shape[:2]
    gains = np.array([red_gain, 1.0, blue_gain], dtype=np.float32)
    lin = np.power(np.clip(rgb, 0.0, 1.0), gamma, dtype=np.float32)
    raw = lin / gains
    cfa = np.zeros((h, w), dtype=np.int64)       # RGGB: 0 = R, 1 = G, 2 = B
    cfa[0::2, 1::2] = 1
    cfa[1::2, 0::2] = 1
    cfa[1::2, 1::2] = 2
    rows, cols = np.indices((h, w))
    bayer = raw[rows, cols, cfa]
    saturated = lin.max(axis=2) >= 0.99
    noise = rng.standard_normal((h, w), dtype=np.float32) * np.sqrt(shot * bayer + read)
    noise[saturated] = 0.0
    k_g = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], dtype=np.float32) / 4
    k_rb = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=np.float32) / 4
    planes = [_conv3(noise * (cfa == c), k_g if c == 1 else k_rb) for c in range(3)]
    out = lin + np.stack(planes, axis=2) * gains
    return np.power(np.clip(out, 0.0, 1.0), 1.0 / gamma, dtype=np.float32)


def add_noise(rgb: np.ndarray, params: dict, *, gamma: float = 2.2) -> np.ndarray:
    """Apply the noise described by a `params["noise"]` dict (see `Degrader.sample_params`)."""
    kind = params["kind"]
    if kind == "none":
        return rgb
    rng = np.random.default_rng(params["noise_seed"])
    if kind == "gaussian":
        return gaussian_noise(rgb, params["sigma"], rng, params["grey"])
    if kind == "poisson":
        return poisson_noise(rgb, params["scale"], rng, params["grey"], params.get("levels"))
    if kind == "raw":
        return raw_noise(rgb, params["shot"], params["read"], params["red_gain"],
                         params["blue_gain"], rng, gamma)
    raise ValueError(f"unknown noise kind {kind!r}")


def scale_gt(rgb: np.ndarray, factor: float) -> np.ndarray:
    return np.clip(rgb * np.float32(factor), 0.0, 1.0)


# ----------------------------------------------------------------------------- the pipeline
@dataclass
class Sample:
    night: np.ndarray                  # the input: dark, blurry, noisy
    gt: np.ndarray                     # the target: sharp, slightly dimmed
    params: dict[str, Any]             # every drawn value, JSON-serialisable
    stages: dict[str, np.ndarray] = field(default_factory=dict)  # low_sharp, low_blur, ...


def _uniform(rng: np.random.Generator, r: Range) -> float:
    return float(r[0] + (r[1] - r[0]) * rng.random())


class Degrader:
    """Seeded night+blur synthesis: `Degrader(cfg)(sharp, seed)` → `Sample`."""

    def __init__(self, config: DegradeConfig | None = None):
        self.config = config or DegradeConfig()
        self.config.validate()

    @property
    def margin(self) -> int:
        """Pixels of real context a crop needs around it so that blur never sees a border."""
        b = self.config.blur
        return int(math.ceil(b.length[1])) + 2 + int(math.ceil(3 * b.defocus_sigma[1]))

    def sample_params(self, seed: int) -> dict[str, Any]:
        # One independent stream per stage: switching a stage off leaves the others' draws alone.
        s_dark, s_blur, s_noise, s_gt = np.random.SeedSequence(int(seed)).spawn(4)
        c = self.config
        rng = np.random.default_rng(s_dark)
        params: dict[str, Any] = {"seed": int(seed),
                                  "darken": {"exposure": _uniform(rng, c.darken.exposure)}}

        rng = np.random.default_rng(s_blur)
        blur_p: dict[str, Any] = {"applied": bool(rng.random() < c.blur.p)}
        blur_p["length"] = _uniform(rng, c.blur.length)
        blur_p["kernel_seed"] = int(rng.integers(0, 2**31 - 1))
        defocus = bool(rng.random() < c.blur.defocus_p)
        sigma = _uniform(rng, c.blur.defocus_sigma)
        blur_p["defocus_sigma"] = sigma if defocus else 0.0
        blur_p["highlight_alpha"] = _uniform(rng, c.blur.highlight_alpha)
        params["blur"] = blur_p

        rng = np.random.default_rng(s_noise)
        n = c.noise
        noise_p: dict[str, Any] = {"noise_seed": int(rng.integers(0, 2**31 - 1))}
        if n.model == "none":
            noise_p["kind"] = "none"
        elif n.model == "lolblur":
            gaussian = bool(rng.random() < n.gaussian_p)
            sigma255 = _uniform(rng, n.gaussian_sigma)
            scale = _uniform(rng, n.poisson_scale)
            noise_p["grey"] = bool(rng.random() < n.grey_p)
            if gaussian:
                noise_p.update(kind="gaussian", sigma=sigma255 / 255.0)
            else:
                noise_p.update(kind="poisson", scale=scale)
        else:
            log_shot = _uniform(rng, (math.log(n.raw_shot[0]), math.log(n.raw_shot[1])))
            # Read noise follows shot noise (Brooks et al., "Unprocessing", 2019).
            log_read = 2.18 * log_shot + 1.20 + 0.26 * float(rng.standard_normal())
            noise_p.update(kind="raw", shot=math.exp(log_shot), read=math.exp(log_read),
                           red_gain=_uniform(rng, n.raw_red_gain),
                           blue_gain=_uniform(rng, n.raw_blue_gain))
        params["noise"] = noise_p

        rng = np.random.default_rng(s_gt)
        params["gt"] = {"scale": _uniform(rng, c.gt.scale)}
        return params

    def kernel(self, params: dict) -> np.ndarray:
        b = params["blur"]
        return shake_kernel(b["kernel_seed"], b["length"], b["defocus_sigma"],
                            steps=self.config.blur.steps, momentum=self.config.blur.momentum)

    def apply(self, sharp: np.ndarray, params: dict, *, roi: tuple[int, int, int, int] | None = None,
              keep_stages: bool = False) -> Sample:
        """Degrade `sharp` as `params` say. `roi` = (top, left, height, width): the part that is
        returned; the rest is context for the blur, and the exposure is fitted on the roi."""
        c = self.config
        sharp = np.asarray(sharp, dtype=np.float32)
        if sharp.ndim != 3 or sharp.shape[2] != 3:
            raise ValueError(f"expected an H×W×3 image, got shape {sharp.shape}")
        H, W = sharp.shape[:2]
        top, left, h, w = roi if roi is not None else (0, 0, H, W)
        params = {k: (dict(v) if isinstance(v, dict) else v) for k, v in params.items()}
        k = self.kernel(params) if params["blur"]["applied"] else None
        r = k.shape[0] // 2 if k is not None else 0
        # Work on the roi plus the kernel radius of real context (less at the image border,
        # where `convolve` reflects instead): no pixel is processed that cannot reach the output.
        y0, y1 = max(0, top - r), min(H, top + h + r)
        x0, x1 = max(0, left - r), min(W, left + w + r)
        sub = sharp[y0:y1, x0:x1]
        cut = (slice(top - y0, top - y0 + h), slice(left - x0, left - x0 + w))

        d = c.darken
        rr = params["darken"].get("curve_r")  # given: one darkening for a whole video clip
        if rr is None:
            rr = fit_curve(lightness(sub[cut]), params["darken"]["exposure"],
                           light_threshold=d.light_threshold, light_band=d.light_band,
                           steps=d.curve_steps, relative=d.relative)
        low_sub, rr = darken(sub, params["darken"]["exposure"], light_threshold=d.light_threshold,
                             light_band=d.light_band, steps=d.curve_steps,
                             ratio_space=d.ratio_space, r=rr)
        params["darken"]["curve_r"] = rr
        low_sharp = np.ascontiguousarray(low_sub[cut])

        if k is not None:
            params["blur"]["kernel_size"] = int(k.shape[0])
            pads = (r - (top - y0), r - (y1 - top - h), r - (left - x0), r - (x1 - left - w))
            low_blur = blur(low_sub, k, highlight_alpha=params["blur"]["highlight_alpha"],
                            light_threshold=d.light_threshold, gamma=c.blur.gamma, pads=pads)
        else:
            low_blur = low_sharp
        gt_src = sharp[top:top + h, left:left + w]

        if params["noise"]["kind"] == "poisson" and "levels" not in params["noise"]:
            params["noise"]["levels"] = photon_levels(low_blur)
        night = add_noise(low_blur, params["noise"], gamma=c.blur.gamma)
        gt = scale_gt(gt_src, params["gt"]["scale"])
        stages = {}
        if keep_stages:
            stages = {"low_sharp": low_sharp, "low_blur": low_blur,
                      "high_sharp_original": np.ascontiguousarray(gt_src)}
        return Sample(night=night, gt=gt, params=params, stages=stages)

    def __call__(self, sharp: np.ndarray, seed: int, **kwargs) -> Sample:
        return self.apply(sharp, self.sample_params(seed), **kwargs)


def sample_seed(seed: int, *keys: int) -> int:
    """A per-sample seed from a run seed and indices; independent of worker count or order."""
    return int(np.random.SeedSequence([int(seed), *map(int, keys)]).generate_state(1)[0])
