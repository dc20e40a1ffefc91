"""The ``vqcnir`` command line: restore | convert | (synth, data, evaluate, ... from their packages).

Every user-caused problem ends in one ``error: ...`` line and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

from . import __version__
from .device import add_device_argument
from .errors import OutputExistsError, VQCNIRError

# Sub-commands that live with their own package; each module exposes register(subparsers).
_COMMAND_MODULES = ("vqcnir.data.cli", "vqcnir.metrics.cli", "vqcnir.train.cli", "vqcnir.web.cli")


def _add_restore(subparsers) -> None:
    p = subparsers.add_parser(
        "restore", help="restore night photos and videos (files or folders)",
        description="Restore dark, blurry night photos and videos. Inputs are never overwritten; existing "
                    "outputs are kept unless --overwrite.")
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image or video files, or folders")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUTDIR", help="output folder")
    p.add_argument("--weights", default=None, metavar="NAME|PATH",
                   help="model name from `vqcnir models`, a checkpoint (.pth or .safetensors) or an ONNX file "
                        "from `vqcnir export`; default: the bundled default model")
    p.add_argument("--backend", default="auto", choices=("auto", "torch", "onnxruntime"),
                   help="what runs the network: torch, or ONNX Runtime (pip install 'vqcnir[onnx]'); "
                        "auto (default): onnxruntime for an .onnx --weights, torch otherwise")
    p.add_argument("--recursive", action="store_true", help="descend into sub-folders, mirroring them in OUTDIR")
    p.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    add_device_argument(p)
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"),
                   help="compute precision (bf16/fp16 only where the device supports them)")
    p.add_argument("--pad-mode", default="auto", choices=("auto", "release", "minimal"),
                   help="release: always pad 1-64 px like the authors' code (parity); minimal: pad only "
                        "to the next multiple of 8 (faster); auto (default): release for the paper-size "
                        "network, minimal for smaller ones")
    p.add_argument("--tile", type=int, default=None,
                   help="tile size in px (default: chosen from --memory-budget; 0 = never tile)")
    p.add_argument("--tile-overlap", type=int, default=32, help="overlap between tiles in px (default 32)")
    p.add_argument("--memory-budget", type=float, default=None, metavar="GIB",
                   help="memory one forward pass may use, in GiB (default: 40%% of free RAM, max 8; 60%% of free GPU memory)")
    p.add_argument("--max-megapixels", type=float, default=None, metavar="MP",
                   help="refuse larger images, read from their header before decoding (a guard against "
                        "decompression bombs; default 100, or $VQCNIR_MAX_MEGAPIXELS)")
    p.add_argument("--self-ensemble", action="store_true",
                   help="average the restorations of the 8 flipped and rotated copies: better (about +0.6 dB "
                        "on the samples, less mosaic texture) and 8x slower")
    p.add_argument("--side-by-side", type=Path, default=None, metavar="FILE",
                   help="also write one picture with a row per photo: night | restored (| ground truth)")
    p.add_argument("--gt", type=Path, default=None, metavar="DIR",
                   help="ground-truth folder for --side-by-side, matched by relative path")
    from .video.cli import add_restore_arguments

    add_restore_arguments(p)
    p.set_defaults(func=_run_restore)


def _run_restore(args) -> int:
    import torch
    from tqdm import tqdm

    from .allocator import keep_freed_memory
    from .backends import backend_device, load_restorer, resolve_backend
    from .engine import RestoreOptions, count_passes, effective_precision, precision_dtype, restore_tensor
    from .imagefiles import (IMAGE_EXTENSIONS, list_images, read_image, remove_stale_temporaries,
                             resolve_max_megapixels, to_tensor, write_image)
    from .video import VIDEO_EXTENSIONS, is_video_path
    from .zoo import resolve_weights

    weights = resolve_weights(args.weights)
    backend = resolve_backend(weights, args.backend)
    _check_side_by_side(args)
    device = backend_device(args.device, backend)
    precision_dtype(args.precision, device)  # refuse an impossible precision before any work
    precision, why = effective_precision(args.precision, device)
    if why:
        print(f"warning: --precision {args.precision}: {why}", file=sys.stderr)
    options = RestoreOptions(
        pad_mode=args.pad_mode, precision=precision, tile=args.tile, tile_overlap=args.tile_overlap,
        memory_budget=None if args.memory_budget is None else args.memory_budget * 2**30,
        self_ensemble=args.self_ensemble).validate()
    max_megapixels = resolve_max_megapixels(args.max_megapixels)
    if args.output.exists() and not args.output.is_dir():
        raise VQCNIRError(f"{args.output}: output exists and is not a folder")

    failures: list[str] = []

    def report(error: VQCNIRError) -> None:  # a bad input path is reported, the others still run
        failures.append(str(error))
        print(f"error: {error}", file=sys.stderr)

    # two inputs that would share an output name stop the run here, before anything is written
    jobs = list_images(args.inputs, args.recursive, exclude=args.output, on_error=report,
                       extensions=IMAGE_EXTENSIONS | VIDEO_EXTENSIONS)
    if not jobs and not failures:
        raise VQCNIRError("no images or videos found in the given inputs")
    if device.type == "cpu":
        keep_freed_memory()  # about 1.5x faster on large photos; see vqcnir/allocator.py
    model = load_restorer(weights, device, backend, precision) if jobs else None

    if args.output.is_dir() and (stale := remove_stale_temporaries(args.output)):
        print(f"removed {stale} temporary file(s) left in {args.output} by an interrupted run", file=sys.stderr)
    restored = skipped = 0
    video_settings: dict = {}  # checked on the first video (it needs PyAV), reused after
    done: list[tuple[Path, Path, Path]] = []  # (input, output, relative path) for --side-by-side
    seconds = megapixels = 0.0
    # disable=None: no bar when stderr is not a terminal, so logs hold whole lines only
    bar = tqdm(jobs, unit="img", disable=None if jobs else True, dynamic_ncols=True)
    for src, rel in bar:
        dst = args.output / rel
        bar.set_postfix_str(str(rel)[-40:])
        try:
            if dst.resolve() == src.resolve():
                raise VQCNIRError(f"{src}: output would overwrite the input; choose another -o folder")
            if is_video_path(src):
                result = _restore_video(model, src, dst, options, args, device, weights, video_settings)
                restored += not result.skipped
                skipped += result.skipped
                continue
            if dst.exists() and not args.overwrite:
                skipped += 1
                done.append((src, dst, rel))
                continue
            image = read_image(src, max_megapixels=max_megapixels)
            x = to_tensor(image.rgb)
            passes = count_passes(model, x.shape[-2], x.shape[-1], options)
            start = time.perf_counter()
            try:
                with tqdm(total=passes, unit="pass", leave=False, disable=True if passes == 1 else None,
                          dynamic_ncols=True) as pass_bar:
                    y = restore_tensor(model, x, options, progress=pass_bar.update)
            except torch.OutOfMemoryError:
                raise VQCNIRError(f"{src}: out of memory; pass a smaller --tile or --memory-budget") from None
            seconds += time.perf_counter() - start
            megapixels += x.shape[-2] * x.shape[-1] / 1e6
            rgb = y[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy()
            try:
                write_image(dst, rgb, alpha=image.alpha, bit_depth=image.bit_depth, grey=image.grey,
                            overwrite=args.overwrite)
                restored += 1
            except OutputExistsError:  # another run wrote it while this one restored: theirs is kept
                skipped += 1
            done.append((src, dst, rel))
        except VQCNIRError as e:
            failures.append(str(e))
            tqdm.write(f"error: {e}", file=sys.stderr)
    bar.close()

    speed = f", {seconds / megapixels:.2f} s/MP" if megapixels else ""
    print(f"restored {restored}, skipped {skipped} (already there; --overwrite replaces them), "
          f"failed {len(failures)}{speed} -> {args.output}")
    if args.side_by_side is not None and done:
        from .sheet import write_side_by_side

        rows = write_side_by_side(done, args.side_by_side, args.gt, max_megapixels)
        print(f"side-by-side picture of {rows} photo(s) -> {args.side_by_side}")
    return 1 if failures else 0


def _restore_video(model, src: Path, dst: Path, options, args, device, weights: Path, settings: dict):
    """One video through vqcnir.video (PyAV is needed from here on, not before)."""
    from .video.cli import restore_one, video_options

    if "video" not in settings:
        settings["video"] = video_options(args, device)
    model_id = f"{weights.resolve()} ({weights.stat().st_size} bytes)"
    return restore_one(model, src, dst, options, settings["video"], overwrite=args.overwrite, model_id=model_id)


def _check_side_by_side(args) -> None:
    """Refuse a --side-by-side target that would replace an input or an existing file."""
    target = args.side_by_side
    if target is None:
        if args.gt is not None:
            raise VQCNIRError("--gt is only used with --side-by-side FILE")
        return
    if args.gt is not None and not args.gt.is_dir():
        raise VQCNIRError(f"--gt {args.gt}: not a folder")
    from .imagefiles import IMAGE_EXTENSIONS

    if target.suffix.lower() not in IMAGE_EXTENSIONS:
        raise VQCNIRError(f"--side-by-side {target}: use an image extension (.jpg, .png, ...)")
    if target.is_dir():
        raise VQCNIRError(f"--side-by-side {target}: is a folder; give a file name")
    if target.exists() and not args.overwrite:
        raise VQCNIRError(f"--side-by-side {target}: already exists; pass --overwrite to replace it")
    if any(target.resolve() == Path(item).resolve() for item in args.inputs):
        raise VQCNIRError(f"--side-by-side {target}: would overwrite an input")


def _add_convert(subparsers) -> None:
    p = subparsers.add_parser("convert", help="convert a checkpoint between .pth and .safetensors",
                              description="Convert between the official .pth format and .safetensors.")
    p.add_argument("src", type=Path, metavar="IN")
    p.add_argument("dst", type=Path, metavar="OUT")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default=None,
                   help="store the weights in this precision (fp16: half the size); default: as they are")
    p.set_defaults(func=_run_convert)


def _run_convert(args) -> int:
    import torch

    from .weights import convert

    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}.get(args.dtype)
    state = convert(args.src, args.dst, overwrite=args.overwrite, dtype=dtype)
    print(f"wrote {args.dst} ({len(state)} tensors, {sum(v.numel() for v in state.values()):,} values)")
    return 0


def _add_export(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="export a restorer to ONNX (for ONNX Runtime, TensorRT, ...)",
        description="Write the restorer as an ONNX graph with dynamic batch, height and width (multiples "
                    "of 8; `vqcnir restore --weights FILE.onnx` pads for you). Needs pip install 'vqcnir[onnx]'.")
    p.add_argument("dst", type=Path, metavar="MODEL.onnx")
    p.add_argument("--weights", default=None, metavar="NAME|PATH",
                   help="model name from `vqcnir models` or a checkpoint; default: the bundled default model")
    p.add_argument("--opset", type=int, default=19, help="ONNX opset (default 19, the first with DeformConv)")
    p.add_argument("--precision", default="fp32", choices=("fp32", "fp16"),
                   help="fp16: half the file, for GPU runtimes; input and output are then fp16 too")
    p.add_argument("--deform", default="deformconv", choices=("deformconv", "gridsample"),
                   help="write the deformable convs as ONNX DeformConv (default; faster in ONNX Runtime) or "
                        "with GridSample, for runtimes without DeformConv")
    p.add_argument("--size", default=None, metavar="HxW",
                   help="fix height and width (multiples of 8; batch stays dynamic) for runtimes that want "
                        "static shapes; default: any size")
    p.add_argument("--overwrite", action="store_true", help="replace MODEL.onnx if it exists")
    p.set_defaults(func=_run_export)


def _run_export(args) -> int:
    from .export import check_destination, export_onnx
    from .weights import load_network
    from .zoo import resolve_weights

    check_destination(args.dst, args.overwrite)  # before minutes of work
    weights = resolve_weights(args.weights)
    size = None
    if args.size is not None:
        try:
            size = tuple(int(v) for v in args.size.lower().split("x"))
        except ValueError:
            size = ()
        if len(size) != 2:
            raise VQCNIRError(f"--size {args.size}: expected HEIGHTxWIDTH, e.g. 512x768")
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401  (torch's ONNX exporter)
    except ImportError:
        raise VQCNIRError("export needs the onnx package: pip install 'vqcnir[onnx]'") from None
    start = time.perf_counter()
    export_onnx(load_network(weights), args.dst, weights_name=weights.name, opset=args.opset,
                precision=args.precision, deform=args.deform, size=size, overwrite=args.overwrite)
    mib = args.dst.stat().st_size / 2**20
    print(f"wrote {args.dst} ({mib:.1f} MiB, opset {args.opset}, {args.precision}, {args.deform}) "
          f"in {time.perf_counter() - start:.0f} s")
    return 0


def _add_models(subparsers) -> None:
    p = subparsers.add_parser("models", help="list the named models (--weights NAME)",
                              description="List the named models: the bundled default and the authors' "
                                          "checkpoint, with their config, size and scores.")
    p.set_defaults(func=_run_models)


def _run_models(args) -> int:
    from .zoo import MODELS, bundled_path

    for entry in MODELS.values():
        print(f"{entry.name}: {entry.summary}")
        print(f"  config preset: {entry.preset}")
        if entry.filename is not None:
            path = bundled_path(entry)
            size = f"{path.stat().st_size / 2**20:.1f} MiB" if path.is_file() else "MISSING from this install"
            print(f"  file: {entry.filename} ({size}), used when --weights is not given")
        else:
            print(f"  not bundled: {entry.obtain}")
        if entry.scores:
            scores = ", ".join(f"{k.upper() if k in ('psnr', 'ssim') else k} {v:g}" for k, v in entry.scores.items())
            print(f"  scores: {scores} ({entry.scored_on})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vqcnir", description="Restore dark, blurry night photos (VQCNIR).")
    parser.add_argument("--version", action="version", version=f"vqcnir {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_restore(subparsers)
    _add_convert(subparsers)
    _add_export(subparsers)
    _add_models(subparsers)
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except VQCNIRError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`vqcnir models | head -1`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nor fail again at exit
        return 141  # as a shell reports a tool ended by SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
