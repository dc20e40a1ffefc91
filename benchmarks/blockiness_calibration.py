"""Calibrate ``blockiness8`` (docs/evaluation.md): mean and range over a set of pairs for the
clean ground truth, the night inputs, JPEG copies of the ground truth and a model's restorations.

    python benchmarks/blockiness_calibration.py --night testset/test/low_blur_noise \\
        --gt testset/test/high_sharp_scaled --weights default

Prints a Markdown table. The restorations are written to a temporary folder and removed.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile

import numpy as np
import torch
from PIL import Image

from vqcnir.imagefiles import images_under, read_rgb
from vqcnir.metrics import blockiness8


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().unsqueeze(0)


def _jpeg(rgb01: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray((rgb01 * 255).round().astype(np.uint8)).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"), dtype=np.float32) / 255


def _scores(images) -> list[float]:
    return [float(blockiness8(_tensor(img))) for img in images]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--night", required=True)
    p.add_argument("--gt", required=True)
    p.add_argument("--weights", action="append", default=[], help="model(s) to restore --night with")
    args = p.parse_args(argv)
    gt_paths = images_under(args.gt)
    night_paths = images_under(args.night)
    gts = [read_rgb(x) for x in gt_paths]
    rows = [("ground truth", _scores(gts)), ("night input", _scores(read_rgb(x) for x in night_paths))]
    for q in (10, 50, 90):
        rows.append((f"ground truth as JPEG, quality {q}", _scores(_jpeg(g, q) for g in gts)))
    for weights in args.weights:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "vqcnir", "restore", args.night, "-o", tmp, "--recursive",
                            "--weights", weights], check=True, stdout=subprocess.DEVNULL)
            rows.append((f"restored by `{weights}`", _scores(read_rgb(x) for x in images_under(tmp))))
    print(f"{len(gts)} images from {args.gt}\n")
    print("| images | blockiness8 mean | min | max |")
    print("|---|---:|---:|---:|")
    for name, values in rows:
        print(f"| {name} | {np.mean(values):.3f} | {min(values):.3f} | {max(values):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
