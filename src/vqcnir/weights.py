"""Checkpoint formats: the authors' ``.pth`` ({'params': ...} or {'params_ema': ...}), a bare state
dict, or safetensors. Always loaded without unpickling arbitrary objects.

Our own checkpoints also carry the network config (a plain dict in ``.pth``, JSON metadata in
safetensors), because GroupNorm's group count cannot be read off the tensors.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import pickletools
import re
import warnings
import zipfile
from pathlib import Path

import torch

from .imagefiles import atomic_path
from .errors import VQCNIRError
from .nn import VQCNIR, VQCNIRConfig, VQGAN

PTH_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")
SAFETENSORS_SUFFIX = ".safetensors"
CONFIG_KEY = "vqcnir_config"  # in .pth dicts and safetensors metadata
PARAM_KEYS = ("params_ema", "params")  # BasicSR convention; the EMA weights are the better ones
_STAGE2_PREFIXES = ("main_decode.", "multiscale_encoder.blocks.3.")


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == SAFETENSORS_SUFFIX:
        return "safetensors"
    if suffix in PTH_SUFFIXES:
        return "pth"
    raise VQCNIRError(f"{path}: unknown checkpoint format {suffix!r}; use .pth or .safetensors")


def read_checkpoint(path: str | os.PathLike, key: str | None = None) -> tuple[dict[str, torch.Tensor], dict | None]:
    """Returns (state dict, the stored config as found or None); ``checkpoint_config`` checks it."""
    path = Path(path)
    if not path.exists():
        raise VQCNIRError(f"{path}: checkpoint not found")
    if path.is_dir():
        raise VQCNIRError(f"{path}: is a folder, expected a checkpoint file")
    if _format_of(path) == "safetensors":
        return _read_safetensors(path)
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the error below says it all
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise VQCNIRError(f"{path}: {_unpickling_refusal(path, str(e))}") from None
    except Exception as e:  # zip/EOF/format errors from a damaged or foreign file
        raise VQCNIRError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__})") from None
    if not isinstance(data, dict):
        raise VQCNIRError(f"{path}: expected a dict of tensors, found {type(data).__name__}")
    config = data.get(CONFIG_KEY)
    if key is not None:
        if key not in data:
            raise VQCNIRError(f"{path}: has no {key!r} entry (it has: {', '.join(map(str, list(data)[:6]))})")
        state = data[key]
    else:
        state = next((data[k] for k in PARAM_KEYS if k in data), data)
    if not isinstance(state, dict) or not state:
        raise VQCNIRError(f"{path}: no state dict found")
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if len(tensors) != len(state):
        others = [k for k, v in state.items() if not isinstance(v, torch.Tensor)][:3]
        raise VQCNIRError(f"{path}: not a state dict (non-tensor entries such as {', '.join(map(str, others))})")
    return tensors, config


def _unpickling_refusal(path: Path, message: str) -> str:
    """One line for torch's weights-only refusal: pickled code, named, or a damaged file."""
    # torch names the global in some refusals ("Unsupported global: GLOBAL os.system", "unsupported
    # GLOBAL posix.system whose module ...") but only says "Unsupported operand 149" for a
    # protocol-4 pickle, as it does for plain junk: then the pickle's opcodes tell (read, never run)
    found = re.search(r"GLOBAL ([\w.]+)", message)
    names = [found.group(1)] if found else [n for n in _pickled_globals(path) if not n.startswith(_SAFE_MODULES)]
    if names:
        return f"refusing to load: it holds pickled code or objects ({', '.join(names[:2])}), not only tensors"
    return "not a readable PyTorch checkpoint (damaged or another format)"


_SAFE_MODULES = ("torch.", "collections.", "_codecs.")  # what an ordinary checkpoint's pickle names
_MAX_PICKLE_BYTES = 64 * 2**20  # a checkpoint's pickle holds the structure; the tensors are apart


def _pickled_globals(path: Path) -> list[str]:
    """The classes and functions a pickle (or a torch zip checkpoint's data.pkl) refers to."""
    names: list[str] = []
    strings: list[str] = []
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                entry = next(i for i in archive.infolist() if i.filename.endswith("data.pkl"))
                if entry.file_size > _MAX_PICKLE_BYTES:  # a zip bomb: do not inflate it
                    return names
                data = archive.read(entry)
        else:
            data = path.read_bytes()
        stream = io.BytesIO(data)
        while stream.tell() < len(data):  # the legacy format is several pickles in a row
            for op, arg, _ in pickletools.genops(stream):
                if op.name in ("GLOBAL", "INST"):
                    names.append(arg.replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    names.append(".".join(strings[-2:]))
                elif isinstance(arg, str):
                    strings.append(arg)
    except Exception:  # not a pickle (junk, truncated): whatever was named so far
        pass
    return names


def _read_safetensors(path: Path):
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    try:
        tensors = load_file(str(path), device="cpu")
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise VQCNIRError(f"{path}: not a readable safetensors file ({str(e).splitlines()[0][:120]})") from None
    if CONFIG_KEY not in metadata:
        return tensors, None
    try:
        return tensors, json.loads(metadata[CONFIG_KEY])
    except ValueError:
        raise VQCNIRError(f"{path}: its {CONFIG_KEY} metadata is not JSON") from None


def infer_config(state: dict[str, torch.Tensor]) -> VQCNIRConfig:
    """The config of a checkpoint that does not record one (e.g. the authors')."""
    try:
        width = state["multiscale_encoder.in_conv.weight"].shape[0]
        codebook_size, code_dim = state["quantize_group.0.embedding.weight"].shape
    except KeyError as e:
        raise VQCNIRError(f"not a VQCNIR checkpoint: it has no {e.args[0]!r} tensor") from None
    aiem = {k.split(".")[4] for k in state if k.startswith("multiscale_encoder.blocks.3.blks.")}
    splits = sum(1 for k in state if k.startswith("multiscale_encoder.blocks.3.blks.0.IMAC.predictA") and k.endswith(".0.weight"))
    curves_key = "multiscale_encoder.blocks.3.blks.0.IMAC.predictA0.4.weight"
    dbca_levels = len({k.split(".")[2] for k in state if k.startswith("main_decode.attn.")})
    norm_groups = 32 if width % 32 == 0 else max(g for g in (16, 8, 4, 2, 1) if width % g == 0)
    return VQCNIRConfig(
        width=width,
        codebook_size=codebook_size,
        code_dim=code_dim,
        num_aiem=max(len(aiem), 1),
        aiem_splits=splits or 4,
        aiem_curves=state[curves_key].shape[0] if curves_key in state else 3,
        norm_groups=norm_groups,
        use_aiem=bool(aiem),
        use_dbca=dbca_levels > 0,
        dbca_levels=dbca_levels or 4,
        encoder_skips=any(k.startswith("main_decode.skip_dict.") for k in state),
    )


def checkpoint_config(state: dict[str, torch.Tensor], stored, source: str) -> VQCNIRConfig:
    """The network a checkpoint holds: its stored config (``read_checkpoint``'s second value),
    checked against the tensors' shapes, or one inferred from them. Checked before anything is
    built, so a small file whose config claims a huge network cannot exhaust memory."""
    inferred = infer_config(state)
    if stored is None or stored == {}:
        return inferred
    try:
        config = VQCNIRConfig.from_dict(stored)
    except (TypeError, ValueError) as e:
        raise VQCNIRError(f"{source}: its {CONFIG_KEY} metadata is malformed ({e})") from None
    checked = ["width", "codebook_size", "code_dim"]
    if not is_stage1(state):
        checked += ["use_aiem", "use_dbca", "encoder_skips"] + (["num_aiem", "aiem_splits", "aiem_curves"] if inferred.use_aiem else [])
        checked += ["dbca_levels"] if inferred.use_dbca else []
    differ = [f"{k}={getattr(config, k)} but the tensors hold {getattr(inferred, k)}"
              for k in checked if getattr(config, k) != getattr(inferred, k)]
    if differ:
        raise VQCNIRError(f"{source}: its {CONFIG_KEY} does not match its tensors ({'; '.join(differ[:3])})")
    return config


def is_stage1(state: dict[str, torch.Tensor]) -> bool:
    return not any(k.startswith(_STAGE2_PREFIXES) for k in state)


def mismatches(expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor],
               names: list[str] | None = None) -> tuple[list[str], list[str]]:
    """(missing, wrong shape): the ``names`` of ``expected`` (default: all) that ``state`` lacks,
    and those it has with another shape."""
    names = list(expected) if names is None else names
    missing = [k for k in names if k not in state]
    wrong = [k for k in names if k in state and state[k].shape != expected[k].shape]
    return missing, wrong


def check_fits(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Raise one clear error naming the first mismatches instead of loading a wrong checkpoint."""
    expected = model.state_dict()
    missing, wrong_shape = mismatches(expected, state)
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}" for k in wrong_shape]
    if not (missing or unexpected or wrong):
        return
    if isinstance(model, VQCNIR) and is_stage1(state):
        raise VQCNIRError(f"{source}: this is a stage-1 (codebook autoencoder) checkpoint; restoring needs a "
                          "stage-2 checkpoint (the authors' VQCNIR_LOLBlur_G.pth or one from `vqcnir train` stage 2)")
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
    if wrong:
        parts.append(f"{len(wrong)} with the wrong shape (e.g. {'; '.join(wrong[:2])})")
    raise VQCNIRError(f"{source}: checkpoint does not fit the model: " + "; ".join(parts))


def load_network(weights: str | os.PathLike, device: str | torch.device = "cpu",
               config: VQCNIRConfig | None = None, stage: int = 2) -> torch.nn.Module:
    """Build the network a checkpoint describes, load it strictly, and put it in eval mode."""
    state, stored = read_checkpoint(weights)
    if config is None:
        config = checkpoint_config(state, stored, str(weights))
    network = VQCNIR if stage == 2 else VQGAN
    with torch.device("meta"):  # shapes only, no memory: check before building the real network
        check_fits(network(config), state, str(weights))
    model = network(config)
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()


def save_checkpoint(path: str | os.PathLike, state: dict[str, torch.Tensor], config: VQCNIRConfig | dict | None,
                    extra: dict | None = None, dtype: torch.dtype | None = None) -> None:
    """Write ``.pth`` as {'params': state, 'vqcnir_config': {...}} or ``.safetensors`` with the config
    as metadata; atomically (temporary file, then rename)."""
    path = Path(path)
    config_dict = config.to_dict() if isinstance(config, VQCNIRConfig) else config
    state = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().cpu().contiguous()
             for k, v in state.items()}
    fmt = _format_of(path)
    with atomic_path(path) as tmp:
        if fmt == "safetensors":
            from safetensors.torch import save_file

            metadata = {CONFIG_KEY: json.dumps(config_dict)} if config_dict else {}
            save_file(state, str(tmp), metadata=metadata)
        else:
            payload = {"params": state, **(extra or {})}
            if config_dict:
                payload[CONFIG_KEY] = config_dict
            torch.save(payload, tmp)


def convert(src: str | os.PathLike, dst: str | os.PathLike, overwrite: bool = False,
            dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Convert between ``.pth`` and ``.safetensors`` (either direction), keeping the config.

    ``dtype`` (e.g. ``torch.float16``, half the size) casts the floating-point tensors; a value
    the dtype cannot hold is refused rather than silently turned into infinity."""
    src, dst = Path(src), Path(dst)
    _format_of(dst)
    if dst.exists() and dst.resolve() == src.resolve():
        raise VQCNIRError(f"{dst}: output would overwrite the input")
    if dst.exists() and not overwrite:
        raise VQCNIRError(f"{dst}: already exists (pass --overwrite to replace it)")
    state, stored = read_checkpoint(src)
    config = checkpoint_config(state, stored, str(src)).to_dict()
    if dtype is not None and dtype.is_floating_point:
        limit = torch.finfo(dtype).max
        for name, value in state.items():
            if value.is_floating_point() and value.abs().max() > limit:
                raise VQCNIRError(f"{src}: {name} holds values beyond {dtype} range ({limit:g}); keep fp32")
    save_checkpoint(dst, state, config, dtype=dtype)
    return state
