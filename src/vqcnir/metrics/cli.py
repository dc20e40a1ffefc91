"""``vqcnir evaluate``: the metrics and baselines on the command line.

``register(subparsers)`` adds the subcommand to the main program's argparse subparsers.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import VQCNIRError

EXIT_UNAVAILABLE = 3

_EPILOG = """examples:
  vqcnir evaluate --restored out/ --gt LOL-Blur/test/high --metrics psnr,ssim,stlpips_alex
  vqcnir evaluate --restored real_out/ --metrics niqe,musiq
  vqcnir evaluate --night test/low --gt test/high --method clahe --out eval_clahe
  vqcnir evaluate --night test/low --gt test/high --weights model.pth --out eval_model
  vqcnir evaluate --list-metrics

exit status: 0 when every requested metric was computed, 3 when some could not run here
(their reason is printed and recorded in the JSON); a user error prints one line and exits non-zero."""


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "evaluate",
        help="score restored images: PSNR, SSIM, LPIPS variants, NIQE, ...",
        description="Score restored images against ground truth (full-reference metrics) or alone "
                    "(no-reference metrics); optionally restore a night folder first with a model "
                    "or a classical baseline. Writes metrics.csv and metrics.json with the protocol.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--restored", type=Path, help="folder of restored images (output folder with --night)")
    p.add_argument("--gt", type=Path, help="folder of ground-truth images, paired by relative path")
    p.add_argument("--metrics", default=None,
                   help="comma-separated metric names (default: psnr,ssim with --gt, else niqe); "
                        "see --list-metrics")
    p.add_argument("--crop", type=int, default=0, help="pixels removed at every border first (default 0)")
    p.add_argument("--night", type=Path, help="night images to restore first (with --weights or --method)")
    p.add_argument("--weights", type=Path, help="VQCNIR checkpoint used to restore --night")
    from ..baselines import BASELINES

    p.add_argument("--method", choices=sorted(BASELINES), help="classical baseline used to restore --night")
    p.add_argument("--out", type=Path, default=Path("evaluation"),
                   help="folder for metrics.csv and metrics.json (default: ./evaluation)")
    p.add_argument("--overwrite", action="store_true", help="replace metrics.csv/json already in --out")
    p.add_argument("--per-image", action="store_true", help="also print every image's values")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    p.add_argument("--pyiqa-weights", type=Path,
                   help="folder holding pyiqa weights files (MUSIQ, NRQM, PI, BRISQUE); never downloaded")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--list-metrics", action="store_true", help="list metrics and whether each can run here")
    p.set_defaults(func=handler)
    return p


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise VQCNIRError(f"--device {name}: no CUDA device is available")
    if not (name == "cpu" or name.startswith("cuda")):
        raise VQCNIRError(f"--device {name}: use cpu, cuda, cuda:N or auto")
    return name


def _list_metrics() -> int:
    from . import available
    from .registry import SPECS

    for name, reason in available().items():
        kind = "full-reference" if SPECS[name].reference else "no-reference"
        print(f"{name:<13} {kind:<15} {'available' if reason is None else 'unavailable: ' + reason}")
    return 0


def _restorer_from_model(weights: Path, device: str):
    try:
        from .. import load_model, restore
    except ImportError as error:
        raise VQCNIRError(f"--weights needs the restore API, which is not available ({error})") from None
    model = load_model(weights, device=device)
    return lambda x: restore(model, x.to(device))


def _restorer_from_baseline(name: str):
    import torch

    from ..baselines import get

    fn = get(name)

    def run(x):
        rgb = x[0].permute(1, 2, 0).numpy()
        return torch.from_numpy(fn(rgb)).permute(2, 0, 1)[None]

    return run


def handler(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_folders, format_table, restore_folder, write_outputs
    from .optional import ENV_WEIGHTS

    if args.list_metrics:
        return _list_metrics()
    if args.pyiqa_weights is not None:
        if not args.pyiqa_weights.is_dir():
            raise VQCNIRError(f"--pyiqa-weights {args.pyiqa_weights}: not a folder")
        os.environ[ENV_WEIGHTS] = str(args.pyiqa_weights)
    device = _device(args.device)
    names = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    progress = not args.no_progress
    source = {"kind": "folder"}
    restored = args.restored
    if args.night is not None:
        if (args.weights is None) == (args.method is None):
            raise VQCNIRError("--night needs exactly one of --weights FILE or --method NAME")
        restored = restored or args.out / "restored"
        if args.weights is not None:
            if not args.weights.is_file():
                raise VQCNIRError(f"--weights {args.weights}: no such file")
            restorer = _restorer_from_model(args.weights, device)
            source = {"kind": "model", "weights": str(args.weights), "night": str(args.night)}
        else:
            restorer = _restorer_from_baseline(args.method)
            from ..baselines import DESCRIPTIONS

            source = {"kind": "baseline", "method": args.method,
                      "description": DESCRIPTIONS[args.method], "night": str(args.night)}
        if not args.night.is_dir():
            raise VQCNIRError(f"--night {args.night}: not a folder")
        source["restored_to"] = str(restored)
        restore_folder(args.night, restored, restorer, progress=progress,
                       desc=args.method or "restore")
    elif args.weights is not None or args.method is not None:
        raise VQCNIRError("--weights and --method restore a --night folder; give --night DIR")
    if restored is None:
        raise VQCNIRError("give --restored DIR (or --night DIR with --weights/--method)")
    ev = evaluate_folders(restored, args.gt, names, crop=args.crop, device=device,
                          progress=progress, source=source)
    csv_path, json_path = write_outputs(ev, args.out, overwrite=args.overwrite)
    print(format_table(ev, per_image=args.per_image))
    print(f"wrote {csv_path} and {json_path}", file=sys.stderr)
    return EXIT_UNAVAILABLE if ev.unavailable else 0
