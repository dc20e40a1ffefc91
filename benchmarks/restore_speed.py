"""Restore speed and peak memory of the model (paper size unless --preset), one process per configuration.

    python benchmarks/restore_speed.py                       # CPU, 2 threads, the full table
    python benchmarks/restore_speed.py --sizes 256,512 --repeats 3
    python benchmarks/restore_speed.py --device cuda --sizes 1080p,4k --precisions fp32,bf16
    python benchmarks/restore_speed.py --preset small --sizes 1mp --modes minimal   # the default model
    python benchmarks/restore_speed.py --preset small:width=16,use_dbca=false,upsample=bilinear --sizes 1mp  # changed
    python benchmarks/restore_speed.py --sizes 512 --allocators keep,glibc           # vqcnir.allocator's effect
    python benchmarks/restore_speed.py --sizes 512 --modes release --precisions fp32 \
        --backends torch,onnxruntime --deform deformconv,gridsample --profile       # backends side by side
    python benchmarks/restore_speed.py --sizes 512 --modes release --precisions fp32 --reference-sizes 512 \
        --backends torch,onnxruntime --release-src ~/VQCNIR --check ''            # against the release itself

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

`--release-src DIR` adds rows `release`: the authors' own inference code (github.com/AlexZou14/VQCNIR,
a folder the user fetched; never part of this project), its network class imported from DIR, built
as their inference script builds it, given the same weights key for key (strict), and timed through
its own test() (their padding). Their deformable conv calls torchvision.ops.deform_conv2d (torchvision
>= 0.9); their compiled CUDA extension is replaced by a stand-in (`dcn_stand_in`). Their code needs
einops and opencv-python. Every fp32 row at a size with a release row is then compared with the
release's output.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections import defaultdict
from pathlib import Path

SIZES = {"256": (256, 256), "512": (512, 512), "1mp": (864, 1152), "1024": (1024, 1024), "12mp": (3000, 4000),
         "1080p": (1080, 1920), "4k": (2160, 3840)}
# The release's network at the size its inference script builds (the paper's codebook).
RELEASE_ARGS = dict(codebook_params=[[32, 1024, 512]], LQ_stage=True, scale_factor=1)
RELEASE_CLASS_FILE = Path("models") / "vqlol_arch.py"


def size_hw(size: str) -> tuple[int, int]:
    """(height, width) of a size name, or of N for an N x N image."""
    return SIZES[size] if size in SIZES else (int(size), int(size))


def network_config(spec: str):
    """``--preset``: a preset's name, or NAME:field=value,... for a preset with changed fields
    (16, false, bilinear), e.g. the recipe search's other network sizes."""
    import yaml

    from vqcnir.nn import VQCNIRConfig, preset

    name, _, changes = spec.partition(":")
    fields = dict(change.split("=", 1) for change in changes.split(",") if change)
    # YAML reads each value as the config files and --opt do: 16 an int, false a bool, a word a string
    return VQCNIRConfig.from_dict({**preset(name).to_dict(), **{k: yaml.safe_load(v) for k, v in fields.items()}})


def benchmark_network(preset_name: str):
    """The network every row runs, with the same random weights in every process (speed does not
    depend on their values). The deformable convs' offset predictors start at zero, which would
    sample whole pixels only; they get random weights too, so the output check covers the sampling."""
    import torch

    from vqcnir.nn import VQCNIR
    from vqcnir.nn.dbca import ModulatedDeformConv

    torch.manual_seed(0)
    model = VQCNIR(network_config(preset_name)).eval()
    for module in model.modules():
        if isinstance(module, ModulatedDeformConv):
            module.conv_offset.reset_parameters()
    return model


def benchmark_input(size: str):
    import torch

    return torch.rand(1, 3, *size_hw(size), generator=torch.Generator().manual_seed(1))


def time_calls(run, runs: int, cuda: bool = False) -> tuple[list[float], object]:
    """Seconds of each of ``runs`` calls of ``run()``, and the last call's result."""
    import torch

    times, result = [], None
    for _ in range(runs):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = run()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times, result


def time_restores(model, x, options, runs: int) -> list[float]:
    """Seconds of each of ``runs`` whole restores (scripts/gpu_check.py times its rows with it too)."""
    from vqcnir.engine import model_device, restore_tensor

    return time_calls(lambda: restore_tensor(model, x, options), runs, model_device(model).type == "cuda")[0]


def release_problem(src: Path) -> str | None:
    """Why DIR cannot be the authors' release folder, or None."""
    if not src.is_dir():
        return f"--release-src {src}: no such folder"
    if not (src / RELEASE_CLASS_FILE).is_file():
        return (f"--release-src {src}: no {RELEASE_CLASS_FILE.as_posix()} in it (expected the authors' release, "
                "github.com/AlexZou14/VQCNIR)")
    return None


def dcn_stand_in() -> types.ModuleType:
    """Stands in for the release's compiled deformable-conv extension (models.ops.dcn.deform_conv_ext,
    CUDA only, built for Python 3.7): its modulated forward, computed by torchvision. Their network's
    DCNv2Pack calls torchvision.ops.deform_conv2d itself, so this only keeps their package from
    loading or compiling a binary (and would serve their ModulatedDeformConvPack on a GPU)."""
    from torchvision.ops import deform_conv2d

    def modulated_deform_conv_forward(input, weight, bias, _ones, offset, mask, output, _columns, _kernel_h,
                                      _kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w,
                                      _groups, _deformable_groups, with_bias):
        # groups and deformable groups follow from the weight's and offset's shapes in torchvision
        output.copy_(deform_conv2d(input, offset, weight, bias if with_bias else None, (stride_h, stride_w),
                                   (pad_h, pad_w), (dilation_h, dilation_w), mask))

    module = types.ModuleType("models.ops.dcn.deform_conv_ext", dcn_stand_in.__doc__)
    module.modulated_deform_conv_forward = modulated_deform_conv_forward
    return module


def build_release(src: Path, network):
    """The authors' network class from ``src``, built as their inference script builds it, with
    ``network``'s weights (strict: every key must match). Exits with one error line if it cannot."""
    problem = release_problem(src)
    if problem:
        raise SystemExit(f"error: {problem}")
    os.environ.pop("BASICSR_JIT", None)  # would make their package compile its CUDA extension
    sys.path.insert(0, str(src.resolve()))
    sys.modules["models.ops.dcn.deform_conv_ext"] = dcn_stand_in()
    try:
        from models.vqlol_arch import VQLOL
    except Exception as e:  # their code, their dependencies: one line, whatever it raised
        hint = f" (pip install {e.name})" if isinstance(e, ModuleNotFoundError) and e.name else ""
        raise SystemExit(f"error: the release in {src} does not import: {type(e).__name__}: {e}{hint}")
    if Path(sys.modules["models.vqlol_arch"].__file__).resolve() != (src / RELEASE_CLASS_FILE).resolve():
        raise SystemExit(f"error: another package named 'models' shadows the release in {src}")
    release = VQLOL(**RELEASE_ARGS).eval()
    try:
        release.load_state_dict(network.state_dict(), strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise SystemExit(f"error: the release's network does not take these weights key for key "
                         f"(it is paper size): {first}")
    return release


def output_difference(out, ref) -> dict:
    """How far ``out`` is from ``ref``, as floats and as 8-bit levels (clamped, x255, rounded)."""
    diff = (out - ref).abs()
    to8 = lambda t: (t.clamp(0, 1) * 255).round()  # noqa: E731
    levels = (to8(out) - to8(ref)).abs()
    return {"max_abs": float(diff.max()), "mean_abs": float(diff.mean()),
            "pct_8bit_differ": 100 * float((levels > 0).float().mean()), "max_levels": int(levels.max())}


def child(size: str, mode: str, precision: str, impl: str, allocator: str, device: str, repeats: int,
          threads: int, preset_name: str, onnx_path: str | None = None, release_src: str | None = None,
          save_output: str | None = None, gemm_size: int = 3072) -> dict:
    if allocator == "keep":
        from vqcnir.allocator import keep_freed_memory

        if not keep_freed_memory():
            raise SystemExit("this C library cannot keep freed memory")
    import torch

    from vqcnir.engine import RestoreOptions, count_tiles, plan_tiles, prepare_for_inference, restore_tensor
    import vqcnir.nn.fastpath as fastpath

    torch.set_num_threads(threads)
    dev = torch.device(device)
    network = benchmark_network(preset_name)
    h, w = size_hw(size)
    x = benchmark_input(size)
    options = RestoreOptions(pad_mode=mode, precision=precision, tile=None if size == "12mp" else 0)
    if impl == "release":  # their test(): release padding, the whole image, fp32
        release = build_release(Path(release_src), network).to(dev)
        run, tiles = (lambda: release.test(x.to(dev))), 1
    else:
        if impl == "reference":
            fastpath.ENABLED = False
            model = network.to(dev)
        elif impl.startswith("onnxruntime"):
            from vqcnir.ortmodel import OnnxRuntimeModel

            model = OnnxRuntimeModel(onnx_path, dev, threads)
        else:
            model = prepare_for_inference(network, dev)
        run, tiles = (lambda: restore_tensor(model, x, options)), count_tiles(h, w, plan_tiles(model, h, w, options))
    times, restored = time_calls(run, repeats + (0 if size == "12mp" else 1), dev.type == "cuda")
    timed = times if size == "12mp" else times[1:]
    if save_output:
        torch.save(restored.float().cpu(), save_output)
    result = {"seconds": statistics.median(timed), "all": [round(t, 2) for t in timed],
              "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "tiles": tiles}
    if dev.type == "cuda":
        result["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    else:  # right after the timed runs, so a busy machine slows both alike
        result["peak_gmacs"] = peak_gmacs(threads, gemm_size)
    return result


def check_same_output(size: str, threads: int) -> dict:
    """How far our CPU path is from the release's way, on one image (release padding, fp32)."""
    import torch

    from vqcnir.engine import RestoreOptions, prepare_for_inference, restore_tensor
    import vqcnir.nn.fastpath as fastpath

    torch.set_num_threads(threads)
    model = benchmark_network("paper")
    x = benchmark_input(size)
    fastpath.ENABLED = False
    ref = restore_tensor(model, x, RestoreOptions(tile=0))
    fastpath.ENABLED = True
    fast = restore_tensor(prepare_for_inference(model, torch.device("cpu")), x, RestoreOptions(tile=0))
    return output_difference(fast, ref)


def padded_size(size: str, mode: str) -> tuple[int, int]:
    from vqcnir.engine import minimal_padding, release_padding

    pad = release_padding if mode == "release" else minimal_padding
    return tuple(n + pad(n) for n in size_hw(size))


def count_macs(preset_name: str, height: int, width: int) -> float:
    """Multiply-accumulates of one forward pass at this (padded) size: counted at 64x64 by
    FlopCounterMode (convs and matmuls, the deformable convs' matmul included) and scaled by the
    pixel count, since every layer's work grows with the pixels."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from vqcnir.nn import VQCNIR

    model = VQCNIR(network_config(preset_name)).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.rand(1, 3, 64, 64))
    return counter.get_total_flops() / 2 * height * width / 64**2


def peak_gmacs(threads: int, n: int = 3072) -> float:
    """The machine's float32 multiply-accumulate rate: best of a few n^3 GEMMs."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.rand(n, n), torch.rand(n, n)
    best = float("inf")
    for _ in range(4):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return n**3 / best / 1e9


def export_for_benchmark(preset_name: str, style: str, size: tuple[int, int], folder: Path) -> Path:
    from vqcnir.export import export_onnx

    path = folder / f"{preset_name}-{style}-{size[0]}x{size[1]}.onnx"
    if not path.exists():
        export_onnx(benchmark_network(preset_name), path, weights_name="random", deform=style, size=size)
    return path


def profile_child(size: str, mode: str, impl: str, threads: int, preset_name: str, onnx_path: str | None,
                  top: int = 12) -> list[tuple[str, float]]:
    """(op, seconds) of one restore, the most expensive first: torch's profiler, or ONNX Runtime's."""
    import torch

    from vqcnir.allocator import keep_freed_memory
    from vqcnir.engine import RestoreOptions, prepare_for_inference, restore_tensor

    keep_freed_memory()
    torch.set_num_threads(threads)
    x = benchmark_input(size)
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
        model = prepare_for_inference(benchmark_network(preset_name), torch.device("cpu"))
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
    parser.add_argument("--preset", default="paper", help="model size: paper (default), small (the bundled model), tiny; "
                        "NAME:field=value,... changes a preset's fields")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--allocators", default="keep", help="keep (what the CLI does on CPU), glibc, or both")
    parser.add_argument("--reference-sizes", default="256,512",
                        help="sizes also run the release's way (and by the release itself with --release-src)")
    parser.add_argument("--release-src", type=Path, default=None, metavar="DIR",
                        help="the authors' release (a checkout of github.com/AlexZou14/VQCNIR): adds its own rows "
                             "and compares every fp32 output with its output")
    parser.add_argument("--check", default="512", help="size at which fast and reference outputs are compared ('' to skip)")
    parser.add_argument("--backends", default="torch", help="torch, onnxruntime, or both (comma-separated)")
    parser.add_argument("--deform", default="deformconv",
                        help="how the ONNX export writes the deformable convs: deformconv, gridsample, or both")
    parser.add_argument("--onnx-dir", type=Path, default=None,
                        help="keep the ONNX exports in this folder and reuse them on the next run (default: a "
                             "temporary folder, removed at the end)")
    parser.add_argument("--profile", action="store_true",
                        help="also print where the time goes (top ops) for each backend at the first size")
    parser.add_argument("--gemm-size", type=int, default=3072, help="N of the N^3 GEMMs that measure the peak")
    parser.add_argument("--child", nargs=5, metavar=("SIZE", "MODE", "PRECISION", "IMPL", "ALLOCATOR"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--onnx", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-profile", nargs=3, metavar=("SIZE", "MODE", "IMPL"), help=argparse.SUPPRESS)
    parser.add_argument("--child-check", metavar="SIZE", help=argparse.SUPPRESS)
    parser.add_argument("--child-release-check", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--save-output", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(child(*args.child, args.device, args.repeats, args.threads, args.preset, args.onnx,
                               args.release_src, args.save_output, args.gemm_size)))
        return
    if args.child_release_check:
        build_release(args.release_src, benchmark_network(args.preset))
        return
    if args.child_profile:
        print(json.dumps(profile_child(*args.child_profile, args.threads, args.preset, args.onnx)))
        return
    if args.child_check:
        print(json.dumps(check_same_output(args.child_check, args.threads)))
        return

    if args.release_src:
        check_release(args)
    precisions = (args.precisions or ("fp32,bf16" if args.device == "cpu" else "fp32,bf16,fp16")).split(",")
    # the allocator only matters on CPU
    allocators = args.allocators.split(",") if args.device == "cpu" else ["glibc"]
    runs = []
    for size in args.sizes.split(","):
        for mode in args.modes.split(","):
            for allocator in allocators:
                if mode == "release" and size in args.reference_sizes.split(","):
                    if args.release_src:
                        runs.append((size, mode, "fp32", "release", allocator))
                    if args.device == "cpu":
                        runs.append((size, mode, "fp32", "reference", allocator))
                for precision in precisions:
                    if "torch" in args.backends.split(","):
                        runs.append((size, mode, precision, "vqcnir", allocator))
                    if "onnxruntime" in args.backends.split(",") and precision == "fp32":
                        runs.extend((size, mode, "fp32", f"onnxruntime-{style}", allocator)
                                    for style in args.deform.split(","))

    from vqcnir.nn import VQCNIR

    n_params = sum(p.numel() for p in VQCNIR(network_config(args.preset)).parameters())
    print(f"device {args.device}, {args.threads} threads, {args.preset} model ({n_params / 1e6:.1f} M parameters)\n")
    print("| size | pad mode | precision | implementation | allocator | tiles | median s | runs (s) | peak RSS MiB | "
          "GMAC/s (% of the GEMM peak measured right after) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="vqcnir-bench-") as folder:
        exports = args.onnx_dir or Path(folder) / "onnx"
        exports.mkdir(parents=True, exist_ok=True)
        agree = run_all(args, runs, exports, Path(folder))
    if not agree:
        raise SystemExit(1)


def check_release(args) -> None:
    """Stops with one error line before any row runs if the release folder cannot serve."""
    problem = release_problem(args.release_src)
    if not problem:
        proc = subprocess.run([sys.executable, __file__, "--child-release-check", "--release-src",
                               str(args.release_src), "--preset", args.preset], capture_output=True, text=True)
        if proc.returncode:
            lines = proc.stderr.strip().splitlines() or ["the release check failed"]
            problem = next((line for line in lines if line.startswith("error: ")), lines[-1])
    if problem:
        print(problem if problem.startswith("error: ") else f"error: {problem}", file=sys.stderr)
        raise SystemExit(2)


def run_all(args, runs: list[tuple], exports: Path, outputs: Path) -> bool:
    """Each configuration in its own process, then the profiles and the output checks. Returns
    whether every output compared with the release's agreed (within one 8-bit level)."""
    onnx_paths = {}
    released = {(size, mode) for size, mode, _p, impl, _a in runs if impl == "release"}
    compared = []  # (row, output_difference) against the release's output at the same size and mode
    for size, mode, precision, impl, allocator in runs:
        cmd = [sys.executable, __file__, "--child", size, mode, precision, impl, allocator, "--device", args.device,
               "--threads", str(args.threads), "--preset", args.preset, "--repeats", str(1 if size == "12mp" else args.repeats),
               "--gemm-size", str(args.gemm_size)]
        if impl == "release":
            cmd += ["--release-src", str(args.release_src)]
        output = outputs / f"{size}-{mode}-{impl}-{allocator}.pt"
        if (size, mode) in released and precision == "fp32":
            cmd += ["--save-output", str(output)]
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
        h, w = size_hw(size)
        extra = f" (GPU {r['peak_gpu_mib']:.0f})" if "peak_gpu_mib" in r else ""
        rate = ""
        if r["tiles"] == 1:
            gmacs = count_macs(args.preset, *padded_size(size, mode)) / r["seconds"] / 1e9
            rate = f"{gmacs:.1f}" + (f" ({100 * gmacs / r['peak_gmacs']:.0f} % of {r['peak_gmacs']:.0f})"
                                     if "peak_gmacs" in r else "")
        print(f"| {h}x{w} | {mode} | {precision} | {impl} | {allocator} | {r['tiles']} | {r['seconds']:.2f} | "
              f"{', '.join(map(str, r['all']))} | {r['peak_rss_mib']:.0f}{extra} | {rate} |", flush=True)
        release_output = outputs / f"{size}-{mode}-release-{allocator}.pt"
        if impl != "release" and output.exists() and release_output.exists():
            import torch

            load = lambda path: torch.load(path, weights_only=True)  # noqa: E731
            compared.append(((h, w, mode, impl, allocator), output_difference(load(output), load(release_output))))
    if args.profile and args.device == "cpu":
        size, mode = args.sizes.split(",")[0], args.modes.split(",")[0]
        impls = sorted({(impl, onnx_paths.get((impl, padded_size(size, mode)))) for _s, _m, _p, impl, _a in runs
                        if impl not in ("reference", "release")})
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
    return report_against_release(compared, expected=bool(released))


def report_against_release(compared: list[tuple], expected: bool) -> bool:
    """Prints how far each fp32 output is from the release's; True if all are within one 8-bit level."""
    if not expected:
        return True
    if not compared:
        print("\nsame output as the release itself: nothing to compare (a release row or every other row failed)")
        return False
    print("\nsame output as the release itself (fp32; 8-bit = clamped to [0, 1], x255, rounded):\n")
    print("| size | pad mode | implementation | allocator | max-abs | mean-abs | 8-bit values that differ | "
          "largest 8-bit difference | within 1 level |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (h, w, mode, impl, allocator), d in compared:
        print(f"| {h}x{w} | {mode} | {impl} | {allocator} | {d['max_abs']:.1e} | {d['mean_abs']:.1e} | "
              f"{d['pct_8bit_differ']:.3f} % | {d['max_levels']} | {'yes' if d['max_levels'] <= 1 else 'NO'} |")
    return all(d["max_levels"] <= 1 for _row, d in compared)


if __name__ == "__main__":
    main()
