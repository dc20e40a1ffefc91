"""``vqcnir evaluate``: the metrics and baselines on the command line.

``register(subparsers)`` adds the subcommand to the main program's argparse subparsers.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..device import add_device_argument
from ..errors import VQCNIRError

EXIT_UNAVAILABLE = 3

_EPILOG = """examples:
  vqcnir evaluate --restored out/ --gt LOL-Blur/test/high --metrics psnr,ssim,stlpips_alex
  vqcnir evaluate --restored real_out/ --metrics niqe,musiq
  vqcnir evaluate --night test/low --gt test/high --method clahe --out eval_clahe
  vqcnir evaluate --night test/low --gt test/high --weights model.pth --out eval_model
  vqcnir evaluate --night test/low --gt test/high --method identity,gamma,clahe --weights default --metrics psnr,ssim,stlpips_vgg --out eval/
  vqcnir evaluate --night test/low --gt test/high --method gamma --weights default --gt-mean --out eval_gtmean/
  vqcnir evaluate --restored out/clip.mkv --gt clips/gt/clip.mkv   (video: psnr,ssim,warp_error,flicker)
  vqcnir evaluate --list-metrics

exit status: 0 when every requested metric was computed, 3 when some could not run here
(their reason is printed and recorded in the JSON); a user error prints one line and exits non-zero."""


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "evaluate",
        help="score restored images: PSNR, SSIM, LPIPS variants, NIQE, ...",
        description="Score restored images against ground truth (full-reference metrics) or alone "
                    "(no-reference metrics); optionally restore a night folder first with a model "
                    "or a classical baseline. Writes metrics.csv and metrics.json with the protocol. "
                    "Several methods (--method a,b and/or --weights) are each restored and scored into "
                    "OUT/<method>/ and compared in OUT/comparison.md, .csv and .json.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--restored", type=Path, help="folder of restored images (output folder with --night), "
                                                 "or a restored video (a video file, or a folder of frames with "
                                                 "--metrics warp_error,...)")
    p.add_argument("--gt", type=Path, help="folder of ground-truth images, paired by relative path (or a video, "
                                           "or a folder of its frames)")
    p.add_argument("--metrics", default=None,
                   help="comma-separated metric names (default: psnr,ssim with --gt, else niqe); "
                        "see --list-metrics")
    p.add_argument("--crop", type=int, default=0, help="pixels removed at every border first (default 0)")
    p.add_argument("--gt-mean", action="store_true",
                   help="scale each restored image to its ground truth's mean brightness before scoring "
                        "(the \"GT-mean\" protocol of low-light papers: scores without global exposure)")
    p.add_argument("--night", type=Path, help="night images to restore first (with --weights or --method)")
    p.add_argument("--weights", metavar="NAME|PATH",
                   help="VQCNIR model (name from `vqcnir models`, or a checkpoint) used to restore --night")
    p.add_argument("--self-ensemble", action="store_true",
                   help="with --weights: average the model over the 8 flips and quarter-turns (8x slower)")
    p.add_argument("--method", metavar="NAME[,NAME...]",
                   help="classical baseline(s) used to restore --night: " + ", ".join(_baselines())
                        + "; with several methods (or --method and --weights) each goes to OUT/<method>/ "
                        "and OUT/comparison.md/.csv/.json compare them")
    p.add_argument("--out", type=Path, default=Path("evaluation"),
                   help="folder for metrics.csv and metrics.json (default: ./evaluation)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace metrics.csv/json (and comparison.*) already in --out")
    p.add_argument("--per-image", action="store_true", help="also print every image's values")
    add_device_argument(p, default="cpu")
    p.add_argument("--pyiqa-weights", type=Path,
                   help="folder holding pyiqa weights files (MUSIQ, NRQM, PI, BRISQUE); never downloaded")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--list-metrics", action="store_true", help="list metrics and whether each can run here")
    p.set_defaults(func=handler)
    return p


def _baselines() -> list[str]:
    from .baselines import BASELINES

    return list(BASELINES)


def _device(name: str) -> str:
    from ..engine import choose_device

    return str(choose_device(name))


def _list_metrics() -> int:
    from . import available
    from .registry import SPECS

    for name, reason in available().items():
        kind = "full-reference" if SPECS[name].reference else "no-reference"
        print(f"{name:<13} {kind:<15} {'available' if reason is None else 'unavailable: ' + reason}")
    return 0


def _restorer_from_model(weights: Path, device: str, self_ensemble: bool = False):
    try:
        from .. import load_model, restore
    except ImportError as error:
        raise VQCNIRError(f"--weights needs the restore API, which is not available ({error})") from None
    if device == "cpu":
        from ..allocator import keep_freed_memory

        keep_freed_memory()  # about 1.5x faster on full-size frames; see vqcnir/allocator.py
    model = load_model(weights, device=device)
    return lambda x: restore(model, x.to(device), self_ensemble=self_ensemble)


def _restorer_from_baseline(name: str):
    import torch

    from .baselines import get

    fn = get(name)

    def run(x):
        rgb = x[0].permute(1, 2, 0).numpy()
        return torch.from_numpy(fn(rgb)).permute(2, 0, 1)[None]

    return run


@dataclass
class _Method:
    label: str                 # folder name under --out, and the key in comparison.json
    title: str                 # row name in the comparison table
    source: dict               # recorded in metrics.json
    make_restorer: Callable    # () -> restorer; called only once nothing clashes
    restored: Path | None = None
    out: Path | None = None


def _parse_methods(text: str | None) -> list[str]:
    if text is None:
        return []
    names = [m.strip() for m in text.split(",") if m.strip()]
    valid = _baselines()
    for name in names:
        if name not in valid:
            raise VQCNIRError(f"--method {name}: unknown baseline; choose from {', '.join(valid)}")
    if not names:
        raise VQCNIRError(f"--method {text!r}: name at least one baseline ({', '.join(valid)})")
    return list(dict.fromkeys(names))


def _baseline_method(name: str, night: Path) -> _Method:
    from .baselines import DESCRIPTIONS

    title = "night input (identity)" if name == "identity" else name
    source = {"kind": "baseline", "method": name, "description": DESCRIPTIONS[name], "night": str(night)}
    return _Method(name, title, source, lambda: _restorer_from_baseline(name))


def _model_method(spec: str, night: Path, device: str, self_ensemble: bool = False) -> _Method:
    from ..zoo import resolve_weights

    weights = resolve_weights(spec)
    source = {"kind": "model", "weights": str(weights), "night": str(night), "self_ensemble": self_ensemble}
    if Path(spec) != weights:
        source["model"] = spec
    title = f"VQCNIR ({spec}{', self-ensemble' if self_ensemble else ''})"
    return _Method("model", title, source, lambda: _restorer_from_model(weights, device, self_ensemble))


def _plan(args, device: str) -> list[_Method]:
    """The methods that restore --night, each with its restored folder and output folder."""
    baselines = _parse_methods(args.method)
    if not baselines and args.weights is None:
        raise VQCNIRError("--night needs a restorer: exactly one of --weights NAME|PATH or --method NAME, "
                          "or several (--method a,b --weights W) to compare them")
    methods = [_baseline_method(name, args.night) for name in baselines]
    if args.weights is not None:
        methods.append(_model_method(args.weights, args.night, device, args.self_ensemble))
    if not args.night.is_dir():
        raise VQCNIRError(f"--night {args.night}: not a folder")
    for m in methods:
        if len(methods) == 1:
            m.restored, m.out = args.restored or args.out / "restored", args.out
        else:
            m.out = args.out / m.label
            m.restored = args.restored / m.label if args.restored else m.out / "restored"
        m.source["restored_to"] = str(m.restored)
    return methods


def _check_clashes(methods: list[_Method], args) -> None:
    """Refuse before any work when an output would be replaced (or a restored folder is in use)."""
    from .evaluate import (
        comparison_paths,
        output_paths,
        refuse_existing,
        restore_targets,
    )

    if len(methods) > 1:
        refuse_existing(comparison_paths(args.out), args.overwrite)
    for m in methods:
        refuse_existing(output_paths(m.out), args.overwrite)
    for m in methods:
        restore_targets(args.night, m.restored)


def _print_gt_mean_note(args) -> None:
    if args.gt_mean:
        from .evaluate import GT_MEAN_PROTOCOL

        print(f"GT-mean: {GT_MEAN_PROTOCOL}")


def _restore_and_score(methods: list[_Method], args, names, device: str) -> list:
    from .evaluate import evaluate_folders, restore_folder, write_outputs

    evaluations = []
    restorers = [m.make_restorer() for m in methods]  # load the model before restoring anything
    for m, restorer in zip(methods, restorers):
        restore_folder(args.night, m.restored, restorer, progress=not args.no_progress, desc=m.label)
        ev = evaluate_folders(m.restored, args.gt, names, crop=args.crop, device=device,
                              progress=not args.no_progress, source=m.source, gt_mean=args.gt_mean)
        csv_path, json_path = write_outputs(ev, m.out, overwrite=args.overwrite)
        print(f"wrote {csv_path} and {json_path}", file=sys.stderr)
        evaluations.append(ev)
    return evaluations


def _from_night(args, names, device: str) -> int:
    from .evaluate import (
        comparison_metrics,
        format_comparison,
        format_table,
        write_comparison,
    )

    methods = _plan(args, device)
    _check_clashes(methods, args)
    evaluations = _restore_and_score(methods, args, names, device)
    if len(methods) == 1:
        print(format_table(evaluations[0], per_image=args.per_image))
        _print_gt_mean_note(args)
        return EXIT_UNAVAILABLE if evaluations[0].unavailable else 0
    rows = [(m.label, m.title, ev) for m, ev in zip(methods, evaluations)]
    paths = write_comparison(rows, args.out, night=args.night, overwrite=args.overwrite)
    if args.per_image:
        for m, ev in zip(methods, evaluations):
            print(f"{m.title}\n{format_table(ev, per_image=True)}\n")
    table_rows = [(title, ev) for _, title, ev in rows]
    print(format_comparison(table_rows, comparison_metrics(evaluations), markdown=False))
    _print_gt_mean_note(args)
    for n, reason in {k: v for ev in evaluations for k, v in ev.unavailable.items()}.items():
        print(f"{n}: unavailable: {reason}")
    print(f"wrote {', '.join(str(p) for p in paths)}", file=sys.stderr)
    return EXIT_UNAVAILABLE if any(ev.unavailable for ev in evaluations) else 0


def handler(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_folders
    from .optional import ENV_WEIGHTS

    if args.list_metrics:
        return _list_metrics()
    if args.pyiqa_weights is not None:
        if not args.pyiqa_weights.is_dir():
            raise VQCNIRError(f"--pyiqa-weights {args.pyiqa_weights}: not a folder")
        os.environ[ENV_WEIGHTS] = str(args.pyiqa_weights)
    device = _device(args.device)
    names = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    if args.gt_mean and args.gt is None:  # refuse before restoring anything
        from .evaluate import GT_MEAN_NEEDS_GT

        raise VQCNIRError(GT_MEAN_NEEDS_GT)
    if args.self_ensemble and args.weights is None:
        raise VQCNIRError("--self-ensemble averages a model's restorations; give --night DIR --weights NAME|PATH")
    if args.night is not None:
        return _from_night(args, names, device)
    if args.weights is not None or args.method is not None:
        raise VQCNIRError("--weights and --method restore a --night folder; give --night DIR")
    if args.restored is None:
        raise VQCNIRError("give --restored DIR (or --night DIR with --weights/--method)")
    from .video import evaluate_video, is_video_request

    if is_video_request(args.restored, args.gt, names):
        ev = evaluate_video(args.restored, args.gt, names, crop=args.crop, device=device,
                            progress=not args.no_progress, gt_mean=args.gt_mean)
        return _report(ev, args)
    ev = evaluate_folders(args.restored, args.gt, names, crop=args.crop, device=device,
                          progress=not args.no_progress, source={"kind": "folder"}, gt_mean=args.gt_mean)
    return _report(ev, args)


def _report(ev, args) -> int:
    from .evaluate import format_table, write_outputs

    csv_path, json_path = write_outputs(ev, args.out, overwrite=args.overwrite)
    print(format_table(ev, per_image=args.per_image))
    _print_gt_mean_note(args)
    print(f"wrote {csv_path} and {json_path}", file=sys.stderr)
    return EXIT_UNAVAILABLE if ev.unavailable else 0
