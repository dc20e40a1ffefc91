"""Images per second for each metric at 1120×640 (LOL-Blur frame size) on CPU.

    python benchmarks/metrics_speed.py [--threads 2] [--repeats 3] [--metrics psnr,ssim,niqe,...]

Prints a table: median wall seconds per image (pair), the CPU seconds the process used for it
(all threads; steadier than wall time on a shared machine), images per second, and the
projected wall time for the 1,800-image LOL-Blur test split. Metrics that cannot run here are listed with the reason.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from vqcnir import metrics

LOL_BLUR_TEST = 1800


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", default="1120x640", help="WxH")
    ap.add_argument("--metrics", default=",".join(metrics.SPECS))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.split("x"))
    g = torch.Generator().manual_seed(0)
    gt = torch.nn.functional.avg_pool2d(torch.rand(1, 3, h, w, generator=g), 3, 1, 1)
    restored = ((gt + 0.03 * torch.randn(gt.shape, generator=g)).clamp(0, 1) * 255).round() / 255
    gt = (gt * 255).round() / 255
    print(f"{w}x{h}, CPU, {args.threads} thread(s), median of {args.repeats} after one warm-up")
    print(f"{'metric':<13} {'s/image':>9} {'cpu s':>7} {'images/s':>9} {'LOL-Blur test (1800)':>22}")
    with torch.no_grad():
        for name in args.metrics.split(","):
            reason = metrics.available().get(name, f"unknown metric {name!r}")
            if reason is not None:
                print(f"{name:<13} unavailable: {reason}")
                continue
            ref = gt if metrics.spec(name).reference else None
            metrics.compute(name, restored, ref)  # warm-up (builds networks)
            times, cpu = [], []
            for _ in range(args.repeats):
                t, c = time.perf_counter(), time.process_time()
                metrics.compute(name, restored, ref)
                times.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
            s = statistics.median(times)
            total = s * LOL_BLUR_TEST
            print(f"{name:<13} {s:9.3f} {statistics.median(cpu):7.3f} {1 / s:9.2f} {total / 60:19.1f} min")


if __name__ == "__main__":
    main()
