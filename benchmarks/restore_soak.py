"""Soak: one `vqcnir restore` process over many small images; its resident memory should stay flat
after warm-up (no leak). Prints the RSS curve, sampled from outside the process while it runs.

    python benchmarks/restore_soak.py                          # 500 images of 64x48, the tiny model
    python benchmarks/restore_soak.py --images 2000 --size 128x96 --preset small
    python benchmarks/restore_soak.py --images 120 --json      # one JSON object (the tests use this)

Linux only (reads /proc/<pid>/status). Weights are random: memory does not depend on their values.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _rss_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _make_inputs(folder: Path, images: int, size: tuple[int, int], preset_name: str) -> Path:
    import numpy as np
    import torch
    from PIL import Image

    from vqcnir.nn import VQCNIR, preset
    from vqcnir.weights import save_checkpoint

    night = folder / "night"
    night.mkdir()
    rng = np.random.default_rng(0)
    for i in range(images):
        Image.fromarray(rng.integers(0, 80, (size[1], size[0], 3), dtype=np.uint8)).save(night / f"{i:05d}.png")
    torch.manual_seed(0)
    weights = folder / "weights.safetensors"
    save_checkpoint(weights, VQCNIR(preset(preset_name)).state_dict(), preset(preset_name))
    return weights


def soak(images: int, size: tuple[int, int], preset_name: str, threads: int) -> dict:
    """Run the restore and return {"curve": [(images done, RSS MiB)], "growth_mib": ..., ...}."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        weights = _make_inputs(folder, images, size, preset_name)
        out = folder / "out"
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        process = subprocess.Popen(
            [sys.executable, "-m", "vqcnir", "restore", str(folder / "night"), "-o", str(out),
             "--weights", str(weights), "--device", "cpu"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        rss_at: dict[int, float] = {}  # images written -> last RSS seen with that many written
        while process.poll() is None:
            rss = _rss_mib(process.pid)
            done = sum(1 for _ in os.scandir(out)) if out.is_dir() else 0
            if rss is not None and done < images:  # after the last image: exit, not the restore loop
                rss_at[done] = rss
            time.sleep(0.05)
        stdout, stderr = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"restore failed ({process.returncode}):\n{stderr}")
    curve = sorted(rss_at.items())
    # warm-up: the first fifth of the images; then compare the second fifth with the last fifth
    early = [rss for done, rss in curve if images // 5 <= done < 2 * images // 5]
    late = [rss for done, rss in curve if done >= 4 * images // 5]
    growth = statistics.median(late) - statistics.median(early) if early and late else float("nan")
    return {"images": images, "size": list(size), "preset": preset_name, "curve": curve,
            "growth_mib": growth, "summary": stdout.strip().splitlines()[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--size", default="64x48", help="WxH of each image")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--every", type=int, default=50, help="print one row per this many images")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    result = soak(args.images, (width, height), args.preset, args.threads)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.images} images of {width}x{height}, {args.preset} model, {args.threads} thread(s)")
    print(f"{result['summary']}\n")
    print("| images restored | RSS MiB |\n|---|---|")
    for done, rss in result["curve"]:
        if done % args.every == 0 or done == result["curve"][-1][0]:
            print(f"| {done} | {rss:.1f} |")
    print(f"\ngrowth from images {args.images // 5}-{2 * args.images // 5} to the last fifth: "
          f"{result['growth_mib']:+.1f} MiB (median RSS of each window)")


if __name__ == "__main__":
    main()
