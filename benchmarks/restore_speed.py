"""Restore speed and peak memory of the model (paper size unless --preset), one process per configuration.

    python benchmarks/restore_speed.py                       # CPU, 2 threads, the full table
    python benchmarks/restore_speed.py --sizes 256,512 --repeats 3
    python benchmarks/restore_speed.py --device cuda --sizes 1080p,4k --precisions fp32,bf16
    python benchmarks/restore_speed.py --preset small --sizes 1mp --modes minimal   # the default model
    python benchmarks/restore_speed.py --sizes 512 --allocators keep,glibc           # vqcnir.allocator's effect

Rows marked `reference` run the network the way the authors' release does (torchvision's
deformable-conv CPU kernel, oneDNN's dilated depthwise conv, default memory layout) in the same conditions, so the speed-up is
measured on this machine rather than against a number from elsewhere. Weights are random
(speed does not depend on their values). Timings: 1 warm-up, then the median of the repeats.
Allocator `keep` is what `vqcnir restore` and `evaluate` use on CPU (glibc keeps freed memory,
see vqcnir/allocator.py); `glibc` is the C library's default, what a plain script gets.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

SIZES = {"256": (256, 256), "512": (512, 512), "1mp": (864, 1152), "1024": (1024, 1024), "12mp": (3000, 4000),
         "1080p": (1080, 1920), "4k": (2160, 3840)}


def child(size: str, mode: str, precision: str, impl: str, allocator: str, device: str, repeats: int,
          threads: int, preset_name: str) -> dict:
    if allocator == "keep":
        from vqcnir.allocator import keep_freed_memory

        if not keep_freed_memory():
            raise SystemExit("this C library cannot keep freed memory")
    import torch

    from vqcnir.engine import RestoreOptions, count_tiles, plan_tiles, prepare_for_inference, restore_tensor
    from vqcnir.nn import VQCNIR, preset
    import vqcnir.nn.fastpath as fastpath

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    dev = torch.device(device)
    model = VQCNIR(preset(preset_name)).eval()
    if impl == "reference":
        fastpath.ENABLED = False
        model = model.to(dev)
    else:
        model = prepare_for_inference(model, dev)
    h, w = SIZES[size]
    x = torch.rand(1, 3, h, w)
    options = RestoreOptions(pad_mode=mode, precision=precision, tile=None if size == "12mp" else 0)
    plan = plan_tiles(model, h, w, options)
    times = []
    for i in range(repeats + (0 if size == "12mp" else 1)):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        restore_tensor(model, x, options)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    timed = times if size == "12mp" else times[1:]
    result = {"seconds": statistics.median(timed), "all": [round(t, 2) for t in timed],
              "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "tiles": count_tiles(h, w, plan)}
    if dev.type == "cuda":
        result["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def check_same_output(size: str, threads: int) -> dict:
    """How far our CPU path is from the release's way, on one image (release padding, fp32)."""
    import torch

    from vqcnir.engine import RestoreOptions, prepare_for_inference, restore_tensor
    from vqcnir.nn import VQCNIR
    import vqcnir.nn.fastpath as fastpath

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = VQCNIR().eval()
    x = torch.rand(1, 3, *SIZES[size])
    fastpath.ENABLED = False
    ref = restore_tensor(model, x, RestoreOptions(tile=0))
    fastpath.ENABLED = True
    fast = restore_tensor(prepare_for_inference(model, torch.device("cpu")), x, RestoreOptions(tile=0))
    diff = (fast - ref).abs()
    to8 = lambda t: (t.clamp(0, 1) * 255).round()  # noqa: E731
    return {"max_abs": float(diff.max()), "mean_abs": float(diff.mean()),
            "pct_8bit_differ": 100 * float((to8(fast) != to8(ref)).float().mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="256,512,1024,12mp")
    parser.add_argument("--modes", default="release,minimal")
    parser.add_argument("--precisions", default=None, help="default: fp32,bf16 on CPU; fp32,bf16,fp16 on GPU")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--preset", default="paper", help="model size: paper (default), small (the bundled model), tiny")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--allocators", default="keep", help="keep (what the CLI does on CPU), glibc, or both")
    parser.add_argument("--reference-sizes", default="256,512", help="sizes also run the release's way")
    parser.add_argument("--check", default="512", help="size at which fast and reference outputs are compared ('' to skip)")
    parser.add_argument("--child", nargs=5, metavar=("SIZE", "MODE", "PRECISION", "IMPL", "ALLOCATOR"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--child-check", metavar="SIZE", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(child(*args.child, args.device, args.repeats, args.threads, args.preset)))
        return
    if args.child_check:
        print(json.dumps(check_same_output(args.child_check, args.threads)))
        return

    precisions = (args.precisions or ("fp32,bf16" if args.device == "cpu" else "fp32,bf16,fp16")).split(",")
    # the allocator only matters on CPU
    allocators = args.allocators.split(",") if args.device == "cpu" else ["glibc"]
    runs = []
    for size in args.sizes.split(","):
        for mode in args.modes.split(","):
            for allocator in allocators:
                if mode == "release" and size in args.reference_sizes.split(",") and args.device == "cpu":
                    runs.append((size, mode, "fp32", "reference", allocator))
                for precision in precisions:
                    runs.append((size, mode, precision, "vqcnir", allocator))

    from vqcnir.nn import VQCNIR, preset

    n_params = sum(p.numel() for p in VQCNIR(preset(args.preset)).parameters())
    print(f"device {args.device}, {args.threads} threads, {args.preset} model ({n_params / 1e6:.1f} M parameters)\n")
    print("| size | pad mode | precision | implementation | allocator | tiles | median s | runs (s) | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size, mode, precision, impl, allocator in runs:
        cmd = [sys.executable, __file__, "--child", size, mode, precision, impl, allocator, "--device", args.device,
               "--threads", str(args.threads), "--preset", args.preset, "--repeats", str(1 if size == "12mp" else args.repeats)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            reason = (proc.stderr.strip().splitlines() or ["failed"])[-1][:80]
            print(f"| {size} | {mode} | {precision} | {impl} | {allocator} | | failed: {reason} | | |", flush=True)
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        h, w = SIZES[size]
        extra = f" (GPU {r['peak_gpu_mib']:.0f})" if "peak_gpu_mib" in r else ""
        print(f"| {h}x{w} | {mode} | {precision} | {impl} | {allocator} | {r['tiles']} | {r['seconds']:.2f} | "
              f"{', '.join(map(str, r['all']))} | {r['peak_rss_mib']:.0f}{extra} |", flush=True)
    if args.check and args.device == "cpu":
        proc = subprocess.run([sys.executable, __file__, "--child-check", args.check, "--threads", str(args.threads)],
                              capture_output=True, text=True)
        if proc.returncode == 0:
            d = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"\nsame output at {args.check}x{args.check}: |vqcnir - reference| max {d['max_abs']:.1e}, "
                  f"mean {d['mean_abs']:.1e}; 8-bit pixels that differ: {d['pct_8bit_differ']:.3f} %")


if __name__ == "__main__":
    main()
