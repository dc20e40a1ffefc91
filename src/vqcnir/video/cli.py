"""The video side of ``vqcnir restore``: its options, and one video restored with a progress bar.

Importing this module loads neither PyAV nor OpenCV; ``restore_one`` does, on the first video.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_restore_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("video inputs (.mp4, .mov, .mkv, ...; see docs/video.md)")
    g.add_argument("--video-codec", default="h264", choices=("h264", "h265", "ffv1"),
                   help="h264 (default, yuv420p, plays everywhere), h265, or ffv1 (lossless RGB, in .mkv)")
    g.add_argument("--video-crf", type=int, default=18, metavar="N",
                   help="quality for h264/h265: 0 best .. 51 smallest (default 18)")
    g.add_argument("--no-temporal", action="store_true",
                   help="restore every frame on its own (default: steady tone and texture over time)")
    g.add_argument("--video-side-by-side", action="store_true",
                   help="write night | restored side by side instead of the restored video alone")
    g.add_argument("--video-batch", type=int, default=None, metavar="N",
                   help="frames per forward pass (default: 4 on a GPU, 1 on the CPU)")
    g.add_argument("--video-segment", type=int, default=64, metavar="N",
                   help="frames per resumable segment: a killed job restarted with the same command "
                        "loses at most this much work (default 64)")


def video_options(args: argparse.Namespace, device):
    """The VideoOptions the restore arguments ask for, checked (this needs PyAV)."""
    from .restore import VideoOptions
    from .io import EncodeSettings
    from .temporal import TemporalSettings

    batch = args.video_batch if args.video_batch is not None else (4 if device.type == "cuda" else 1)
    options = VideoOptions(encode=EncodeSettings(args.video_codec, args.video_crf),
                           temporal=None if args.no_temporal else TemporalSettings(),
                           side_by_side=args.video_side_by_side, segment_frames=args.video_segment,
                           batch=batch)
    return options.validate()


def restore_one(model, src: Path, planned: Path, engine, options, *, overwrite: bool, model_id: str):
    """Restore one video with a progress bar in frames (with ETA); returns a VideoResult."""
    from tqdm import tqdm

    from .restore import restore_video

    bar = None

    def progress(done: int, total: int | None) -> None:
        nonlocal bar
        if bar is None:  # first call: frames an earlier run finished count as done, not as speed
            bar = tqdm(total=total, initial=done, unit="frame", leave=False, dynamic_ncols=True,
                       desc=src.name[-30:])
        else:
            bar.update(done - bar.n)

    try:
        return restore_video(model, src, planned, engine, options, overwrite=overwrite,
                             model_id=model_id, progress=progress)
    except KeyboardInterrupt:
        print(f"\n{src}: stopped; the same command resumes from the last finished segment", file=sys.stderr)
        raise
    finally:
        if bar is not None:
            bar.close()
