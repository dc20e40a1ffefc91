"""Command-line entry points of the data package: `vqcnir synth` and `vqcnir data photos`.

`register(subparsers)` adds them to the main program's argparse sub-commands; each handler
returns an exit code and raises VQCNIRError for anything the user got wrong.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import VQCNIRError
from .degrade import DegradeConfig


def _size(text: str) -> tuple[int, int] | None:
    if text.lower() in ("full", "0"):
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1120x640 or 'full', not {text!r}")
    if w < 1 or h < 1:
        raise argparse.ArgumentTypeError("size must be positive")
    return w, h


def load_config(path: str | None) -> DegradeConfig:
    if path is None:
        return DegradeConfig()
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as exc:
        raise VQCNIRError(f"cannot read the synthesis config {p}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise VQCNIRError(f"{p} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if data is not None and not isinstance(data, dict):
        raise VQCNIRError(f"{p} must hold a mapping with darken/blur/noise/gt sections")
    if data and "synth" in data:  # allow a training config's synth: section as well
        data = data["synth"]
    return DegradeConfig.from_dict(data)


def cmd_synth(args: argparse.Namespace) -> int:
    if args.video:
        return _synth_video(args)
    from .synth import SynthSettings, synthesize

    settings = SynthSettings(seed=args.seed, size=args.size, frames_per_video=args.frames_per_video,
                             min_scale=args.min_scale, test_photo_fraction=args.test_photo_fraction,
                             all_folders=args.all_folders, config=load_config(args.config))
    counts = synthesize(args.sharp_dir, args.output, pairs=args.pairs, test_pairs=args.test_pairs,
                        settings=settings, workers=args.workers, progress=not args.quiet)
    if not args.quiet:
        print(f"{args.output}: {counts['made']} pairs written, {counts['skipped']} already there")
    if counts["smaller"]:
        w, h = args.size
        print(f"warning: {counts['smaller']} of the {counts['made']} frames written are smaller than "
              f"{w}x{h}: their photos are; frames never upscale a photo", file=sys.stderr)
    return 0


def _synth_video(args: argparse.Namespace) -> int:
    from .video_synth import ClipSettings, synthesize_clips

    if args.test_pairs or args.size is None:
        raise VQCNIRError("--video makes --pairs clips of one --size WxH; --test-pairs and 'full' do not apply")
    settings = ClipSettings(seed=args.seed, size=args.size, frames=args.frames_per_video, fps=args.fps,
                            codec=args.video_codec, crf=args.video_crf, config=load_config(args.config))
    counts = synthesize_clips(args.sharp_dir, args.output, clips=args.pairs, settings=settings,
                              progress=not args.quiet)
    if not args.quiet:
        print(f"{args.output}: {counts['made']} clips written, {counts['skipped']} already there")
    return 0


def cmd_photos(args: argparse.Namespace) -> int:
    from .photos import collect_photos

    entries = collect_photos(args.output, debian=not args.no_debian, skimage=not args.no_skimage,
                             more=args.more, max_side=args.max_side, progress=not args.quiet)
    if not args.quiet:
        print(f"{args.output}: {len(entries)} photos (licences in manifest.json)")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "synth", help="synthesise night+blur pairs in LOL-Blur's layout from sharp photos",
        description="Darken, shake-blur and add noise to sharp photos; write LOL-Blur folders "
                    "(low_blur_noise = input, high_sharp_scaled = ground truth) and a JSON "
                    "record of every drawn parameter. Re-running resumes.")
    p.add_argument("sharp_dir", help="folder of sharp, well-lit photos (searched recursively)")
    p.add_argument("-o", "--output", required=True, help="output folder (new, or a run to resume)")
    p.add_argument("--pairs", type=int, required=True, help="number of train pairs")
    p.add_argument("--test-pairs", type=int, default=0,
                   help="number of test pairs, made from held-out photos (default 0)")
    p.add_argument("--seed", type=int, default=0, help="the same seed gives the same dataset")
    p.add_argument("--size", type=_size, default=(1120, 640),
                   help="frame size WxH, or 'full' for whole photos (default 1120x640, as LOL-Blur)")
    p.add_argument("--frames-per-video", type=int, default=60,
                   help="frames per numbered sub-folder (default 60, as LOL-Blur)")
    p.add_argument("--min-scale", type=float, default=0.5,
                   help="photos are shrunk by a random factor in [min-scale, 1] first (default 0.5)")
    p.add_argument("--test-photo-fraction", type=float, default=0.15,
                   help="share of photos kept for the test split (default 0.15)")
    p.add_argument("--all-folders", action="store_true",
                   help="also write low_blur, low_sharp and high_sharp_original")
    p.add_argument("--config", help="YAML with darken/blur/noise/gt ranges (defaults: LOL-Blur-like)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    v = p.add_argument_group("video clips (--video; see docs/video.md)")
    v.add_argument("--video", action="store_true",
                   help="make --pairs night/gt video clips of --frames-per-video frames instead: a camera "
                        "pans, zooms and shakes over a photo; darkening fixed per clip, blur and noise per frame")
    v.add_argument("--fps", type=int, default=30, help="frame rate of the clips (default 30)")
    v.add_argument("--video-codec", default="ffv1", choices=("ffv1", "h264", "h265"),
                   help="ffv1 (default: lossless, .mkv), or h264/h265 (.mp4, smaller)")
    v.add_argument("--video-crf", type=int, default=18, metavar="N", help="quality for h264/h265 (default 18)")
    p.set_defaults(func=cmd_synth)

    d = subparsers.add_parser("data", help="data utilities (photo corpus)")
    dsub = d.add_subparsers(dest="data_command", metavar="{photos}")
    dsub.required = True
    ph = dsub.add_parser(
        "photos", help="collect an offline corpus of sharp photos with their licences",
        description="Collect real photographs from Debian wallpaper packages (apt-get download + "
                    "dpkg-deb) and scikit-image into a folder, with manifest.json (author, licence).")
    ph.add_argument("-o", "--output", required=True, help="folder for the photos")
    ph.add_argument("--max-side", type=int, default=1920,
                    help="shrink larger photos to this long side (0: keep; default 1920)")
    ph.add_argument("--more", action="store_true",
                    help="also get 31 photos from lxqt-themes, palapeli-data, sddm-theme-maldives and "
                         "enlightenment-data (about 430 MB to download; see docs/data.md)")
    ph.add_argument("--no-debian", action="store_true", help="skip the Debian packages")
    ph.add_argument("--no-skimage", action="store_true", help="skip scikit-image's photos")
    ph.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ph.set_defaults(func=cmd_photos)
