"""Restore speed and peak memory of the model (paper size unless --preset), one process per configuration.

    python benchmarks/restore_speed.py                       # CPU, 2 threads, the full table
    python benchmarks/restore_speed.py --sizes 256,512 --repeats 3
    python benchmarks/restore_speed.py --device cuda --sizes 1080p,4k --precisions fp32,bf16
    python benchmarks/restore_speed.py --preset small --sizes 1mp --modes minimal   # the default model
    python benchmarks/restore_speed.py --sizes 512 --allocators keep,glibc           # vqcnir.allocator's effect
    python benchmarks/restore_speed.py --sizes 512 --modes release --precisions fp32 \
        --backends torch,onnxruntime --deform deformconv,gridsample --profile       # backends side by side

Rows marked `reference` run the network the way the authors' release does (torchvision's
deformable-conv CPU kernel, oneDNN's dilated depthwise conv, default memory layout) in the same conditions, so the speed-up is
measured on this machine rather than against a number from elsewhere. Weights are random
(speed does not depend on their values). Timings: 1 warm-up, then the median of the repeats.
Allocator `keep` is what `vqcnir restore` and `evaluate` use on CPU (glibc keeps freed memory,
see vqcnir/allocator.py); `glibc` is the C library's default, what a plain script gets.

Rows `onnxruntime-STYLE` run the same engine with the network exported by vqcnir.export (its
deformable convs as ONNX DeformConv or GridSample), at the padded size (`--size`: a fixed-size
export takes minutes less than a dynamic one). The GMAC/s column divides the network's
multiply-accumulates (counted by torch's FlopCounterMode) by the time, and compares that with the
machine's peak, measured by each row's process right after its timed runs (so a busy machine
slows both alike): the best of a few large float32 GEMMs on the same threads.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

SIZES = {"256": (256, 256), "512": (512, 512), "1mp": (864, 1152), "1024": (1024, 1024), "12mp": (3000, 4000),
         "1080p": (1080, 1920), "4k": (2160, 3840)}


def time_restores(model, x, options, runs: int) -> list[float]:
    """Seconds of each of ``runs`` whole restores (scripts/gpu_check.py times its rows with it too)."""
    import torch

    from vqcnir.engine import model_device, restore_tensor

    cuda = model_device(model).type == "cuda"
    times = []
    for _ in range(runs):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        restore_tensor(model, x, options)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def child(size: str, mode: str, precision: str, impl: str, allocator: str, device: str, repeats: int,
          threads: int, preset_name: str, onnx_path: str | None = None) -> dict:
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
    elif impl.startswith("onnxruntime"):
        from vqcnir.ortmodel import OnnxRuntimeModel

        model = OnnxRuntimeModel(onnx_path, dev, threads)
    else:
        model = prepare_for_inference(model, dev)
    h, w = SIZES[size]
    x = torch.rand(1, 3, h, w)
    options = RestoreOptions(pad_mode=mode, precision=precision, tile=None if size == "12mp" else 0)
    plan = plan_tiles(model, h, w, options)
    times = time_restores(model, x, options, repeats + (0 if size == "12mp" else 1))
    timed = times if size == "12mp" else times[1:]
    result = {"seconds": statistics.median(timed), "all": [round(t, 2) for t in timed],
              "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "tiles": count_tiles(h, w, plan)}
    if dev.type == "cuda":
        result["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    else:  # right after the timed runs, so a busy machine slows both alike
        result["peak_gmacs"] = peak_gmacs(threads)
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


def padded_size(size: str, mode: str) -> tuple[int, int]:
    from vqcnir.engine import minimal_padding, release_padding

    pad = release_padding if mode == "release" else minimal_padding
    return tuple(n + pad(n) for n in SIZES[size])


def count_macs(preset_name: str, height: int, width: int) -> float:
    """Multiply-accumulates of one forward pass at this (padded) size: counted at 64x64 by
    FlopCounterMode (convs and matmuls, the deformable convs' matmul included) and scaled by the
    pixel count, since every layer's work grows with the pixels."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from vqcnir.nn import VQCNIR, preset

    model = VQCNIR(preset(preset_name)).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.rand(1, 3, 64, 64))
    return counter.get_total_flops() / 2 * height * width / 64**2


def peak_gmacs(threads: int) -> float:
    """The machine's float32 multiply-accumulate rate: best of a few 3072^3 GEMMs."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.rand(3072, 3072), torch.rand(3072, 3072)
    best = float("inf")
    for _ in range(4):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 3072**3 / best / 1e9


def export_for_benchmark(preset_name: str, style: str, size: tuple[int, int], folder: Path) -> Path:
    import torch

    from vqcnir.export import export_onnx
    from vqcnir.nn import VQCNIR, preset

    torch.manual_seed(0)
    path = folder / f"{preset_name}-{style}-{size[0]}x{size[1]}.onnx"
    if not path.exists():
        export_onnx(VQCNIR(preset(preset_name)).eval(), path, weights_name="random", deform=style, size=size)
    return path


def profile_child(size: str, mode: str, impl: str, threads: int, preset_name: str, onnx_path: str | None,
                  top: int = 12) -> list[tuple[str, float]]:
    """(op, seconds) of one restore, the most expensive first: torch's profiler, or ONNX Runtime's."""
    import torch

    from vqcnir.allocator import keep_freed_memory
    from vqcnir.engine import RestoreOptions, prepare_for_inference, restore_tensor
    from vqcnir.nn import VQCNIR, preset

    keep_freed_memory()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x = torch.rand(1, 3, *SIZES[size])
    options = RestoreOptions(pad_mode=mode, tile=0)
    totals: dict[str, float] = defaultdict(float)
    if impl.startswith("onnxruntime"):
        import onnxruntime as ort

        from vqcnir.ortmodel import OnnxRuntimeModel

        model = OnnxRuntimeModel(onnx_path, torch.device("cpu"), threads)
        restore_tensor(model, x, options)  # warm-up, unprofiled
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "ort")
        model.session = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
        restore_tensor(model, x, options)
        trace = json.loads(Path(model.session.end_profiling()).read_text())
        for event in trace:
            if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
                totals[event["args"]["op_name"]] += event["dur"] / 1e6
    else:
        model = prepare_for_inference(VQCNIR(preset(preset_name)).eval(), torch.device("cpu"))
        restore_tensor(model, x, options)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            restore_tensor(model, x, options)
        for event in prof.key_averages():
            totals[event.key] += event.self_cpu_time_total / 1e6
    return sorted(totals.items(), key=lambda kv: -kv[1])[:top]


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
    parser.add_argument("--backends", default="torch", help="torch, onnxruntime, or both (comma-separated)")
    parser.add_argument("--deform", default="deformconv",
                        help="how the ONNX export writes the deformable convs: deformconv, gridsample, or both")
    parser.add_argument("--onnx-dir", type=Path, default=None,
                        help="keep the ONNX exports in this folder and reuse them on the next run (default: a "
                             "temporary folder, removed at the end)")
    parser.add_argument("--profile", action="store_true",
                        help="also print where the time goes (top ops) for each backend at the first size")
    parser.add_argument("--child", nargs=5, metavar=("SIZE", "MODE", "PRECISION", "IMPL", "ALLOCATOR"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--onnx", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-profile", nargs=3, metavar=("SIZE", "MODE", "IMPL"), help=argparse.SUPPRESS)
    parser.add_argument("--child-check", metavar="SIZE", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(child(*args.child, args.device, args.repeats, args.threads, args.preset, args.onnx)))
        return
    if args.child_profile:
        print(json.dumps(profile_child(*args.child_profile, args.threads, args.preset, args.onnx)))
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
                    if "torch" in args.backends.split(","):
                        runs.append((size, mode, precision, "vqcnir", allocator))
                    if "onnxruntime" in args.backends.split(",") and precision == "fp32":
                        runs.extend((size, mode, "fp32", f"onnxruntime-{style}", allocator)
                                    for style in args.deform.split(","))

    from vqcnir.nn import VQCNIR, preset

    n_params = sum(p.numel() for p in VQCNIR(preset(args.preset)).parameters())
    print(f"device {args.device}, {args.threads} threads, {args.preset} model ({n_params / 1e6:.1f} M parameters)\n")
    print("| size | pad mode | precision | implementation | allocator | tiles | median s | runs (s) | peak RSS MiB | "
          "GMAC/s (% of the GEMM peak measured right after) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="vqcnir-bench-onnx-") as folder:
        exports = args.onnx_dir or Path(folder)
        exports.mkdir(parents=True, exist_ok=True)
        run_all(args, runs, exports)


def run_all(args, runs: list[tuple], exports: Path) -> None:
    """Each configuration in its own process, then the profiles and the output check."""
    onnx_paths = {}
    for size, mode, precision, impl, allocator in runs:
        cmd = [sys.executable, __file__, "--child", size, mode, precision, impl, allocator, "--device", args.device,
               "--threads", str(args.threads), "--preset", args.preset, "--repeats", str(1 if size == "12mp" else args.repeats)]
        if impl.startswith("onnxruntime"):
            key = (impl, padded_size(size, mode))
            if key not in onnx_paths:
                onnx_paths[key] = export_for_benchmark(args.preset, impl.split("-", 1)[1], key[1], exports)
            cmd += ["--onnx", str(onnx_paths[key])]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            reason = (proc.stderr.strip().splitlines() or ["failed"])[-1][:80]
            print(f"| {size} | {mode} | {precision} | {impl} | {allocator} | | failed: {reason} | | |", flush=True)
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        h, w = SIZES[size]
        extra = f" (GPU {r['peak_gpu_mib']:.0f})" if "peak_gpu_mib" in r else ""
        rate = ""
        if r["tiles"] == 1:
            gmacs = count_macs(args.preset, *padded_size(size, mode)) / r["seconds"] / 1e9
            rate = f"{gmacs:.1f}" + (f" ({100 * gmacs / r['peak_gmacs']:.0f} % of {r['peak_gmacs']:.0f})"
                                     if "peak_gmacs" in r else "")
        print(f"| {h}x{w} | {mode} | {precision} | {impl} | {allocator} | {r['tiles']} | {r['seconds']:.2f} | "
              f"{', '.join(map(str, r['all']))} | {r['peak_rss_mib']:.0f}{extra} | {rate} |", flush=True)
    if args.profile and args.device == "cpu":
        size, mode = args.sizes.split(",")[0], args.modes.split(",")[0]
        impls = sorted({(impl, onnx_paths.get((impl, padded_size(size, mode)))) for _s, _m, _p, impl, _a in runs
                        if impl != "reference"})
        for impl, path in impls:
            cmd = [sys.executable, __file__, "--child-profile", size, mode, impl, "--threads", str(args.threads),
                   "--preset", args.preset] + (["--onnx", str(path)] if path else [])
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"\nprofile of {impl} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1][:100]}")
                continue
            top = json.loads(proc.stdout.strip().splitlines()[-1])
            total = sum(t for _op, t in top)
            print(f"\nwhere the time goes: {impl}, {size} {mode}, one restore (top ops, self time)\n")
            print("| op | s | share of these |\n|---|---|---|")
            for op, t in top:
                print(f"| {op} | {t:.2f} | {100 * t / total:.0f} % |")
    if args.check and args.device == "cpu":
        proc = subprocess.run([sys.executable, __file__, "--child-check", args.check, "--threads", str(args.threads)],
                              capture_output=True, text=True)
        if proc.returncode == 0:
            d = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"\nsame output at {args.check}x{args.check}: |vqcnir - reference| max {d['max_abs']:.1e}, "
                  f"mean {d['mean_abs']:.1e}; 8-bit pixels that differ: {d['pct_8bit_differ']:.3f} %")


if __name__ == "__main__":
    main()
