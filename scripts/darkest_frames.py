"""Before/after of the darkest frames of a test split: does a dark scene stay dark and keep its
content, or turn into haze?

    python scripts/darkest_frames.py --night testset/test/low_blur_noise \
        --gt testset/test/high_sharp_scaled --weights default -n 4 --sheet darkest.jpg

Picks the ``n`` frames whose ground truth has the lowest mean luma, restores them, writes a
night | restored | ground truth sheet and prints one table row per frame. Haze shows as a
restored mean above the ground truth's together with a contrast ratio well below 1 (the
restored luma's standard deviation over the ground truth's): the scene is lifted and flattened.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vqcnir.api import load_model, restore
from vqcnir.imagefiles import from_uint, images_under, luma, read_rgb, to_tensor, to_uint, write_image
from vqcnir.metrics.full_reference import psnr
from vqcnir.sheet import side_by_side


def darkest(gt_dir: Path, n: int) -> list[tuple[float, Path]]:
    """The ``n`` ground-truth frames of lowest mean luma, darkest first, as (mean, relative path)."""
    means = [(float(luma(read_rgb(path)).mean()), path.relative_to(gt_dir)) for path in images_under(gt_dir)]
    return sorted(means)[:n]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--night", type=Path, required=True)
    ap.add_argument("--gt", type=Path, required=True)
    ap.add_argument("--weights", default="default")
    ap.add_argument("-n", type=int, default=4, help="how many of the darkest frames (default 4)")
    ap.add_argument("--sheet", type=Path, required=True, help="the before/after picture to write")
    ap.add_argument("--row-height", type=int, default=200)
    args = ap.parse_args(argv)

    model = load_model(args.weights, device="cpu")
    rows, lines = [], []
    for gt_mean, rel in darkest(args.gt, args.n):
        night, gt = read_rgb(args.night / rel), read_rgb(args.gt / rel)
        out = from_uint(restore(model, to_uint(night, 16)))
        lines.append(f"| {rel.as_posix()} | {float(luma(night).mean()):.3f} | {float(luma(out).mean()):.3f} | "
                     f"{gt_mean:.3f} | {float(luma(out).std() / luma(gt).std()):.2f} | "
                     f"{float(psnr(to_tensor(out), to_tensor(gt))):.2f} |")
        rows.append([(f"night {rel.as_posix()}", night), ("restored", out), ("ground truth", gt)])
    write_image(args.sheet, side_by_side(rows, height=args.row_height), bit_depth=8)
    print("| frame | night mean luma | restored mean luma | GT mean luma | contrast vs GT | PSNR |")
    print("|---|---:|---:|---:|---:|---:|")
    print("\n".join(lines))
    print(f"wrote {args.sheet}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
