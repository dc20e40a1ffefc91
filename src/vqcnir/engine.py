"""The restore engine: device and precision choice, padding, overlapping tiles with smooth blending.

Everything here works on N x 3 x H x W float tensors in [0, 1]; file handling lives in the CLI.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass

import torch

from .allocator import keeps_freed_memory, reusable_bytes
from .device import check_device_name
from .errors import VQCNIRError

# "release": always add 1-64 px to reach a multiple of 64, as the authors' test() does (parity).
# "minimal": pad only up to the next multiple of 8, which the network needs.
# "auto": release for the paper-size network (the authors' weights), minimal for other sizes.
PAD_MODES = ("auto", "release", "minimal")
RESTORE_PRECISIONS = ("fp32", "bf16", "fp16")
_NETWORK_MULTIPLE = 8
_RELEASE_WINDOW = 64

# Peak working memory of a paper-size (width 64) forward pass per input pixel, measured with
# benchmarks/restore_speed.py (fp32, CPU); the tile chooser scales it by width and precision.
BYTES_PER_PIXEL_WIDTH64 = 7_000
# With vqcnir.allocator keeping freed memory the heap fragments: measured working peaks (per
# padded pixel, 512 px to 2 MP, paper and small networks) reach up to 1.19x the estimate above.
RETAINED_HEAP_OVERHEAD = 1.25
MIN_TILE = 128


# ----------------------------------------------------------------------------- device, precision
def choose_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; otherwise the named device, checked to exist."""
    check_device_name(name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise VQCNIRError("--device cuda was asked for, but no CUDA GPU is available")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise VQCNIRError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    if device.type == "mps" and not _mps_available():
        raise VQCNIRError("--device mps was asked for, but MPS is not available on this machine")
    return device


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def precision_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The compute dtype for a precision name, refusing what the device cannot do."""
    if precision not in RESTORE_PRECISIONS:
        raise VQCNIRError(f"unknown precision {precision!r}; choose one of {', '.join(RESTORE_PRECISIONS)}")
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise VQCNIRError("bf16 is not supported by this GPU; use fp16 or fp32")
        return torch.bfloat16
    if device.type == "cpu":
        raise VQCNIRError("fp16 needs a GPU (cuda or mps); on the CPU use bf16 or fp32")
    return torch.float16


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware: AVX-512 BF16 or AMX on x86 (Intel Cooper Lake,
    Sapphire Rapids and later; AMD Zen 4 and later), the BF16 extension on Arm. Elsewhere oneDNN
    emulates it: 4-8x slower than fp32 on an AVX2 CPU."""
    try:
        if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return False
    except (AttributeError, RuntimeError):
        return False
    # oneDNN also says yes on AVX-512 CPUs without BF16, where it converts in software
    flags = _cpu_flags()
    return flags is None or bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def _cpu_flags() -> set[str] | None:
    """The CPU's feature flags from /proc/cpuinfo (Linux); None where they cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def effective_precision(precision: str, device: torch.device) -> tuple[str, str]:
    """The precision to compute in, and a one-line reason when it is not the one asked for:
    bf16 on a CPU without native bf16 runs in fp32 instead."""
    if precision == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        return "fp32", ("this CPU has no native bf16 (AVX-512 BF16 or AMX), where bf16 runs 4-8x "
                        "slower than fp32; using fp32")
    return precision, ""


def autocast_context(device: torch.device, dtype: torch.dtype):
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def prepare_for_inference(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Eval mode on ``device``; on CPU, channels-last weights: oneDNN runs the large full-resolution
    convolutions about 1.45x faster that way. They sum in another order, which moves a 512 px
    output by up to 3e-4 from the release's (float32 rounding; about 0.04 % of 8-bit pixels by one
    level); the parity tests run this layout."""
    model = model.to(device).eval()
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    return model


def model_device(model: torch.nn.Module) -> torch.device:
    """Where the model runs: its ``device`` attribute (a backend without torch parameters, such as
    vqcnir.ortmodel's) or its parameters' device."""
    device = getattr(model, "device", None)
    return device if isinstance(device, torch.device) else next(model.parameters()).device


def _wants_channels_last(model: torch.nn.Module) -> bool:
    """Whether prepare_for_inference made this model channels-last (judged by its first conv weight)."""
    weight = next((p for p in model.parameters() if p.ndim == 4), None)
    return weight is not None and weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()


# ----------------------------------------------------------------------------- padding
def release_padding(size: int) -> int:
    """Rows (or columns) the authors' test() appends: 1..64, never 0."""
    return (size // _RELEASE_WINDOW + 1) * _RELEASE_WINDOW - size


def minimal_padding(size: int) -> int:
    return -size % _NETWORK_MULTIPLE


def mirror_pad(x: torch.Tensor, pad_h: int, pad_w: int) -> torch.Tensor:
    """Pad bottom/right with a mirrored copy that repeats the edge row/column (symmetric padding),
    as the release does by appending a flipped copy and cropping: a pad larger than the image
    is therefore cut at twice the image size."""
    h, w = x.shape[-2:]
    if pad_h:
        x = torch.cat((x, x.flip(-2)), dim=-2)[..., : h + pad_h, :]
    if pad_w:
        x = torch.cat((x, x.flip(-1)), dim=-1)[..., : w + pad_w]
    return x


def resolve_pad_mode(model: torch.nn.Module, pad_mode: str) -> str:
    """``auto`` -> ``release`` for the paper's network size, so the authors' checkpoint gives their
    numbers; ``minimal`` otherwise: our own models never saw the release's extra border, and a
    1 MP photo runs about 20 % faster without it."""
    if pad_mode not in PAD_MODES:
        raise VQCNIRError(f"unknown pad mode {pad_mode!r}; choose one of {', '.join(PAD_MODES)}")
    if pad_mode != "auto":
        return pad_mode
    from .nn.config import VQCNIRConfig

    return "release" if getattr(model, "config", None) == VQCNIRConfig() else "minimal"


def forward_padded(model: torch.nn.Module, x: torch.Tensor, pad_mode: str = "auto") -> torch.Tensor:
    """Pad, run the network, crop back to the input size."""
    pad_mode = resolve_pad_mode(model, pad_mode)
    h, w = x.shape[-2:]
    pad = release_padding if pad_mode == "release" else minimal_padding
    y = model(mirror_pad(x, pad(h), pad(w)))
    return y[..., :h, :w]


# ----------------------------------------------------------------------------- tiling
@dataclass(frozen=True)
class TilePlan:
    tile: int
    overlap: int


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets covering [0, size) with tiles of ``tile`` px overlapping by >= ``overlap``;
    the last tile is pulled back to end at the border so every tile has the full size."""
    if size <= tile:
        return [0]
    step = tile - overlap
    count = math.ceil((size - overlap) / step)
    starts = [min(i * step, size - tile) for i in range(count)]
    return sorted(set(starts))


def _ramp(length: int, overlap: int, at_start: bool, at_end: bool, device) -> torch.Tensor:
    """1-D blending weight for one tile side by side with its neighbours.

    On a side that meets another tile, the outer quarter of the overlap gets weight 0 (a tile's
    border pixels lack context and are the least trustworthy) and the next half rises along a
    raised cosine; sides at the image border keep weight 1. The neighbour's zero margin always
    falls inside this tile's full-weight part, so every pixel is covered.
    """
    weight = torch.ones(length, device=device)
    n = min(overlap, length // 2)
    margin = n // 4
    ramp_len = n - 2 * margin
    if ramp_len > 0:
        t = (torch.arange(ramp_len, device=device, dtype=torch.float32) + 0.5) / ramp_len
        rise = torch.cat((torch.zeros(margin, device=device), 0.5 - 0.5 * torch.cos(math.pi * t)))
        if not at_start:
            weight[: margin + ramp_len] = rise
        if not at_end:
            weight[length - margin - ramp_len:] = rise.flip(0)
    return weight


def auto_tile_plan(model: torch.nn.Module, height: int, width: int, dtype: torch.dtype,
                   memory_budget: float | None, device: torch.device) -> TilePlan | None:
    """None when the whole image fits the memory budget, else the largest tile that does."""
    budget = memory_budget if memory_budget is not None else default_memory_budget(device)
    per_pixel = BYTES_PER_PIXEL_WIDTH64 * model.config.width / 64
    if dtype != torch.float32:
        per_pixel /= 2
    if device.type == "cpu" and keeps_freed_memory():
        per_pixel *= RETAINED_HEAP_OVERHEAD
    per_pixel *= getattr(model, "working_memory_factor", 1.0)  # another runtime than torch (vqcnir.ortmodel)
    # release padding can add up to 64 px per side
    padded = (height + _RELEASE_WINDOW) * (width + _RELEASE_WINDOW)
    if padded * per_pixel <= budget:
        return None
    side = int(math.sqrt(budget / per_pixel)) - _RELEASE_WINDOW
    side = max(MIN_TILE, side // _RELEASE_WINDOW * _RELEASE_WINDOW)
    return TilePlan(tile=side, overlap=max(32, side // 8))


def default_memory_budget(device: torch.device) -> float:
    """Bytes we allow one forward pass to use: 60 % of free GPU memory, or 40 % of available RAM
    (capped at 8 GiB on CPU, where larger tiles stop paying off)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return 0.6 * free
    available = _available_ram() + reusable_bytes()  # our own kept heap is ours to reuse
    return min(0.4 * available, 8 * 2**30)


def _available_ram() -> float:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 4 * 2**30


def restore_tiled(model, x: torch.Tensor, plan: TilePlan, pad_mode: str = "auto", progress=None) -> torch.Tensor:
    """Restore overlapping tiles and blend them with smooth weights (no visible seams).

    Tiles are restored independently, so global operations (D's channel attention, AIEM's
    average pool) see one tile at a time: the result differs slightly from a whole-image pass.
    """
    n, _c, h, w = x.shape
    tile_h, tile_w = min(plan.tile, h), min(plan.tile, w)
    ys, xs = tile_starts(h, tile_h, plan.overlap), tile_starts(w, tile_w, plan.overlap)
    out = None
    weight_sum = torch.zeros(1, 1, h, w, device=x.device)
    for y0 in ys:
        wy = _ramp(tile_h, plan.overlap, y0 == 0, y0 + tile_h >= h, x.device)
        for x0 in xs:
            wx = _ramp(tile_w, plan.overlap, x0 == 0, x0 + tile_w >= w, x.device)
            y = forward_padded(model, x[..., y0:y0 + tile_h, x0:x0 + tile_w], pad_mode).float()
            if out is None:
                out = torch.zeros(n, y.shape[1], h, w, device=x.device)
            weight = wy[:, None] * wx[None, :]
            out[..., y0:y0 + tile_h, x0:x0 + tile_w] += y * weight
            weight_sum[..., y0:y0 + tile_h, x0:x0 + tile_w] += weight
            if progress is not None:
                progress()
    return out / weight_sum


def count_tiles(h: int, w: int, plan: TilePlan | None) -> int:
    if plan is None:
        return 1
    return len(tile_starts(h, min(plan.tile, h), plan.overlap)) * len(tile_starts(w, min(plan.tile, w), plan.overlap))


def count_passes(model: torch.nn.Module, h: int, w: int, options: RestoreOptions) -> int:
    """How many times ``restore_tensor`` calls ``progress`` for an image of this size."""
    # a quarter-turn swaps H and W, which gives the same number of tiles
    return count_tiles(h, w, plan_tiles(model, h, w, options)) * (len(DIHEDRAL) if options.self_ensemble else 1)


# ----------------------------------------------------------------------------- self-ensemble
# The 8 symmetries of the square, as (quarter-turns, mirror): "self-ensemble" (Lim et al., EDSR,
# 2017) restores each transformed copy, undoes the transform and averages. For this model it
# also moves the codebook's 8-px grid relative to the content, so its mosaic speckle largely averages out.
DIHEDRAL = tuple((turns, mirror) for turns in range(4) for mirror in (False, True))


def apply_dihedral(x: torch.Tensor, turns: int, mirror: bool) -> torch.Tensor:
    x = torch.rot90(x, turns, (-2, -1))
    return x.flip(-1) if mirror else x


def undo_dihedral(y: torch.Tensor, turns: int, mirror: bool) -> torch.Tensor:
    y = y.flip(-1) if mirror else y
    return torch.rot90(y, -turns, (-2, -1))


# ----------------------------------------------------------------------------- public entry
@dataclass
class RestoreOptions:
    pad_mode: str = "auto"
    precision: str = "fp32"
    tile: int | None = None  # None = choose from the memory budget; 0 = never tile
    tile_overlap: int = 32
    memory_budget: float | None = None  # bytes
    self_ensemble: bool = False  # average over the 8 flips and quarter-turns (8x the time)

    def validate(self) -> "RestoreOptions":
        if self.pad_mode not in PAD_MODES:
            raise VQCNIRError(f"unknown pad mode {self.pad_mode!r}; choose one of {', '.join(PAD_MODES)}")
        if self.tile not in (None, 0) and (self.tile < 16 or not 0 <= self.tile_overlap <= self.tile // 2):
            # blending uses at most half a tile of overlap; more only multiplies the passes
            # (--tile 16 --tile-overlap 15 would take 16,385 passes for a 128x160 photo)
            raise VQCNIRError("--tile must be 0 or >= 16, and --tile-overlap between 0 and half the tile size")
        if self.memory_budget is not None and not 0 < self.memory_budget < math.inf:  # also refuses nan
            raise VQCNIRError("--memory-budget must be a positive, finite number of GiB")
        return self


def plan_tiles(model: torch.nn.Module, height: int, width: int, options: RestoreOptions) -> TilePlan | None:
    """The tiling ``restore_tensor`` will use for an image of this size (None: one pass)."""
    device = model_device(model)
    if options.tile == 0:
        return None
    if options.tile is None:
        dtype = precision_dtype(options.precision, device)
        plan = auto_tile_plan(model, height, width, dtype, options.memory_budget, device)
    else:
        plan = TilePlan(options.validate().tile, options.tile_overlap)
    if plan is not None and plan.tile >= height and plan.tile >= width:
        return None
    return plan


def restore_tensor(model: torch.nn.Module, x: torch.Tensor, options: RestoreOptions | None = None,
                   progress=None) -> torch.Tensor:
    """Restore N x 3 x H x W float images in [0, 1] on the model's device; returns float32, unclamped.
    ``progress`` is called once per tile (once for a whole-image pass), for each of the 8 copies
    with ``options.self_ensemble``; ``count_passes`` says how often."""
    options = options or RestoreOptions()
    if x.ndim != 4 or x.shape[1] != 3:
        raise VQCNIRError(f"expected an N x 3 x H x W tensor, got shape {tuple(x.shape)}")
    if min(x.shape[-2:]) < 2:
        raise VQCNIRError(f"image is too small to restore ({x.shape[-2]}x{x.shape[-1]}); it needs at least 2x2 pixels")
    device = model_device(model)
    dtype = precision_dtype(options.precision, device)
    x = x.to(device=device, dtype=torch.float32)
    if not options.self_ensemble:
        return _restore_once(model, x, options, dtype, progress)
    total = None
    with torch.inference_mode():
        for turns, mirror in DIHEDRAL:
            y = _restore_once(model, apply_dihedral(x, turns, mirror), options, dtype, progress)
            y = undo_dihedral(y, turns, mirror)
            total = y.clone() if total is None else total.add_(y)
        return total.div_(len(DIHEDRAL))


def _restore_once(model: torch.nn.Module, x: torch.Tensor, options: RestoreOptions, dtype: torch.dtype,
                  progress) -> torch.Tensor:
    if _wants_channels_last(model):
        x = x.contiguous(memory_format=torch.channels_last)
    plan = plan_tiles(model, x.shape[-2], x.shape[-1], options)
    with torch.inference_mode(), autocast_context(x.device, dtype):
        if plan is None:
            y = forward_padded(model, x, options.pad_mode).float()
            if progress is not None:
                progress()
            return y
        return restore_tiled(model, x, plan, options.pad_mode, progress)
