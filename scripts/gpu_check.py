"""Check a CUDA machine in a few minutes and print one table.

    python scripts/gpu_check.py                     # on a CUDA machine: full sizes
    python scripts/gpu_check.py --onnx model.onnx   # reuse a `vqcnir export` file (else the default model is exported)

Rows: restore parity of the device against the CPU in float32 the release's way (fp32, bf16,
fp16 within the tolerances below), torchvision's deform_conv2d used on CUDA, 20 training
iterations of each tiny stage with bf16 autocast (2 on a CPU), a one-process torchrun run through NCCL, the
ONNX model under ONNX Runtime's CUDA provider (when onnxruntime-gpu is installed), and restore
speed at 1 MP and 4K for the paper-size and the default model in fp32 and bf16.

Without CUDA it says so in one line and runs the CPU side of every check at tiny sizes (gloo
instead of NCCL, ONNX Runtime's CPU provider). Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "night" / "chelsea.png"
# Largest difference from the CPU float32 reference we accept, per precision: fp32 within float
# rounding of other kernels (channels-last on CPU alone moves 512 px by 3e-4); reduced precisions
# as a PSNR of the restored image against the reference.
FP32_MAX_ABS = 1e-3
MIN_PSNR_DB = {"bf16": 30.0, "fp16": 38.0}
ONNX_MAX_ABS = 1e-3  # CUDA provider against the CPU provider
TRAIN_ITERS = {"cuda": 20, "cpu": 2}  # per tiny stage; the CPU run only proves the path works


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.clamp(0, 1) - b.clamp(0, 1)) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def _night(size: int) -> torch.Tensor:
    """The bundled sample photo, tiled by mirroring up to size x size and cropped."""
    import numpy as np
    from PIL import Image

    # Pillow, not vqcnir.imagefiles: its PNG codec (imagecodecs, 28 MB) does not fit the trip to a
    # GPU machine that can install nothing, and this 8-bit sRGB sample needs no more
    x = torch.from_numpy(np.asarray(Image.open(SAMPLE).convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)[None]
    while min(x.shape[-2:]) < size:
        x = torch.cat((x, x.flip(-1)), -1)
        x = torch.cat((x, x.flip(-2)), -2)
    return x[..., :size, :size].contiguous()


def _models():
    import vqcnir
    from vqcnir.nn import VQCNIR

    torch.manual_seed(0)
    return {"default": vqcnir.load_model(device="cpu"), "paper": VQCNIR().eval()}


# ----------------------------------------------------------------------------- checks
def check_parity(device: torch.device, size: int) -> list[tuple]:
    """The default model on the device against the CPU in float32 with the release's kernels."""
    import copy

    import vqcnir.nn.fastpath as fastpath
    from vqcnir.engine import RestoreOptions, precision_dtype, prepare_for_inference, restore_tensor

    model = _models()["default"]
    x = _night(size)
    fastpath.ENABLED = False
    try:
        release_way = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
        reference = restore_tensor(release_way, x, RestoreOptions(tile=0))
    finally:
        fastpath.ENABLED = True
    on_device = prepare_for_inference(copy.deepcopy(model), device)
    rows = []
    for precision in ("fp32", "bf16", "fp16"):
        name = f"restore parity {precision} ({size}²)"
        try:
            precision_dtype(precision, device)
        except Exception as e:  # fp16 on CPU, bf16 on an old GPU
            rows.append((name, "SKIP", str(e), 0.0))
            continue
        start = time.perf_counter()
        y = restore_tensor(on_device, x, RestoreOptions(precision=precision, tile=0)).cpu()
        seconds = time.perf_counter() - start
        if precision == "fp32":
            diff = float((y - reference).abs().max())
            ok, detail = diff <= FP32_MAX_ABS, f"max |Δ| {diff:.1e} (≤ {FP32_MAX_ABS:g})"
        else:
            db = _psnr(y, reference)
            ok, detail = db >= MIN_PSNR_DB[precision], f"PSNR vs fp32 {db:.1f} dB (≥ {MIN_PSNR_DB[precision]:g})"
        rows.append((name, "PASS" if ok else "FAIL", f"{device.type}: {detail}", seconds))
    return rows


def check_deform_kernel(device: torch.device) -> list[tuple]:
    """On CUDA the deformable convs must run torchvision's kernel; on CPU our grid_sample path."""
    import vqcnir.nn.deform as deform
    from vqcnir.engine import RestoreOptions, prepare_for_inference, restore_tensor
    from vqcnir.nn import VQCNIR, preset
    from vqcnir.nn.dbca import ModulatedDeformConv

    calls = []
    original = deform._torchvision_deform_conv2d

    def counting(*args, **kwargs):
        calls.append(args[0].device.type)
        return original(*args, **kwargs)

    model = prepare_for_inference(VQCNIR(preset("tiny")), device)
    deform._torchvision_deform_conv2d = counting
    try:
        restore_tensor(model, torch.rand(1, 3, 32, 32), RestoreOptions(tile=0))
    finally:
        deform._torchvision_deform_conv2d = original
    layers = sum(isinstance(m, ModulatedDeformConv) for m in model.modules())
    if device.type == "cuda":
        ok = calls == ["cuda"] * layers
        return [("deform_conv2d on CUDA", "PASS" if ok else "FAIL",
                 f"torchvision kernel ran for {len(calls)} of {layers} deformable convs", 0.0)]
    ok = not calls
    return [("deform_conv2d on CUDA", "SKIP" if ok else "FAIL",
             "no CUDA; CPU uses the grid_sample path" + ("" if ok else f" but torchvision ran {len(calls)}x"), 0.0)]


def check_training(device: torch.device, crop: int) -> list[tuple]:
    from vqcnir.train import load_config, run_training

    rows = []
    iters = TRAIN_ITERS[device.type]
    with tempfile.TemporaryDirectory(prefix="gpu-check-train-") as root:
        common = [f"experiments_root={Path(root).as_posix()}", f"train.total_iter={iters}",
                  "train.precision=bf16", f"data.crop={crop}", f"val.crop={crop}", "val.num_images=1",
                  f"val.every={iters}", f"logging.save_every={iters}", "data.synth_length=16",
                  "data.batch_size=2", "logging.progress_bar=false", "val.grid_images=0"]  # no PNG: see _night
        stage1 = Path(root) / "tiny-stage1" / "models" / f"net_g_{iters}.pth"
        for stage, extra in (("tiny-stage1", []), ("tiny-stage2", [f"stage2.stage1_checkpoint={stage1.as_posix()}"])):
            start = time.perf_counter()
            with contextlib.redirect_stdout(sys.stderr):
                result = run_training(load_config(stage, [*common, *extra]), device=device.type)
            ok = result["iter"] == iters and not result["skipped"]
            rows.append((f"train {stage} bf16 autocast", "PASS" if ok else "FAIL",
                         f"{device.type}: {result['iter']} iterations, {result['skipped']} skipped (non-finite)",
                         time.perf_counter() - start))
    return rows


def check_torchrun(device: torch.device) -> list[tuple]:
    backend = "nccl" if device.type == "cuda" else "gloo"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
           str(Path(__file__).resolve()), "--dist-child", backend]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    ok = done.returncode == 0 and "all_reduce ok" in done.stdout
    detail = f"one-process torchrun, {backend} all_reduce + DDP step" + (
        "" if ok else f": {(done.stderr.strip().splitlines() or ['failed'])[-1][:100]}")
    return [(f"torchrun {backend}", "PASS" if ok else "FAIL", detail, time.perf_counter() - start)]


def dist_child(backend: str) -> None:
    """Runs under torchrun: one all_reduce and one DDP training step of the tiny network."""
    import torch.distributed as dist

    from vqcnir.nn import VQCNIR, preset

    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if backend == "nccl" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend)
    try:
        t = torch.ones(4, device=device) * (dist.get_rank() + 1)
        dist.all_reduce(t)
        assert float(t[0]) == dist.get_world_size() * (dist.get_world_size() + 1) / 2
        net = torch.nn.parallel.DistributedDataParallel(VQCNIR(preset("tiny")).to(device))
        loss = net(torch.rand(2, 3, 16, 16, device=device)).mean()
        loss.backward()
        print("all_reduce ok")
    finally:
        dist.destroy_process_group()


def check_onnx(device: torch.device, onnx_path: Path | None, size: int) -> list[tuple]:
    try:
        from vqcnir.ortmodel import OnnxRuntimeModel, onnxruntime_has_cuda
        import onnxruntime  # noqa: F401
    except ImportError:
        return [("ONNX Runtime CUDA provider", "SKIP", "onnxruntime not installed (pip install 'vqcnir[onnx]')", 0.0)]
    from vqcnir.engine import RestoreOptions, restore_tensor

    with tempfile.TemporaryDirectory(prefix="gpu-check-onnx-") as folder:
        start = time.perf_counter()
        if onnx_path is None:
            from vqcnir.export import export_onnx

            onnx_path = export_onnx(_models()["default"], Path(folder) / "default.onnx", weights_name="default")
        exported = time.perf_counter() - start
        x = _night(size)
        start = time.perf_counter()
        on_cpu = restore_tensor(OnnxRuntimeModel(onnx_path, torch.device("cpu")), x, RestoreOptions(tile=0))
        cpu_seconds = time.perf_counter() - start
        if device.type != "cuda" or not onnxruntime_has_cuda():
            why = "no CUDA" if device.type != "cuda" else "onnxruntime-gpu not installed"
            return [("ONNX Runtime CUDA provider", "SKIP",
                     f"{why}; CPU provider ran {onnx_path.name} in {cpu_seconds:.2f} s (export {exported:.0f} s)",
                     cpu_seconds)]
        start = time.perf_counter()
        on_gpu = restore_tensor(OnnxRuntimeModel(onnx_path, device), x, RestoreOptions(tile=0))
        diff = float((on_gpu.cpu() - on_cpu).abs().max())
        return [("ONNX Runtime CUDA provider", "PASS" if diff <= ONNX_MAX_ABS else "FAIL",
                 f"max |CUDA - CPU provider| {diff:.1e} (≤ {ONNX_MAX_ABS:g})", time.perf_counter() - start)]


def _benchmark_module():
    """benchmarks/restore_speed.py, whose timing loop the speed rows share."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("restore_speed", ROOT / "benchmarks" / "restore_speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_speed(device: torch.device, sizes: dict[str, tuple[int, int]], repeats: int, warm_up: bool) -> list[tuple]:
    from vqcnir.engine import RestoreOptions, prepare_for_inference

    time_restores = _benchmark_module().time_restores

    rows = []
    for name, model in _models().items():
        model = prepare_for_inference(model, device)
        for label, (h, w) in sizes.items():
            x = torch.rand(1, 3, h, w)
            for precision in ("fp32", "bf16"):
                options = RestoreOptions(precision=precision, tile=0 if device.type == "cpu" else None)
                try:
                    times = time_restores(model, x, options, repeats + warm_up)
                except Exception as e:  # out of memory, an unsupported precision: one row, not a crash
                    rows.append((f"speed {name} {label} {precision}", "FAIL", str(e).splitlines()[0][:100], 0.0))
                    continue
                seconds = statistics.median(times[int(warm_up):])
                rows.append((f"speed {name} {label} {precision}", "INFO",
                             f"{device.type}: {seconds:.3f} s per image, {h * w / 1e6 / seconds:.3g} MP/s", seconds))
    return rows


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--onnx", type=Path, default=None, help="a `vqcnir export` file to run (default: export the default model)")
    parser.add_argument("--dist-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.dist_child:
        dist_child(args.dist_child)
        return 0
    if args.onnx is not None and not args.onnx.is_file():
        print(f"error: --onnx {args.onnx}: no such file", file=sys.stderr)
        return 2

    if torch.cuda.is_available():
        device = torch.device("cuda")
        print(f"CUDA: {torch.cuda.get_device_name(device)}, torch {torch.__version__}")
        parity_size, crop, repeats, warm_up = 512, 64, 3, True
        sizes = {"1mp": (864, 1152), "4k": (2160, 3840)}
    else:
        device = torch.device("cpu")
        print("no CUDA device here: running the CPU parts of each check at tiny sizes")
        torch.set_num_threads(min(2, torch.get_num_threads()))
        parity_size, crop, repeats, warm_up = 64, 16, 1, False
        sizes = {"64²": (64, 64)}
    rows = []
    print("\n| check | result | detail | s |\n|---|---|---|---|", flush=True)
    for run in (lambda: check_parity(device, parity_size), lambda: check_deform_kernel(device),
                lambda: check_training(device, crop), lambda: check_torchrun(device),
                lambda: check_onnx(device, args.onnx, parity_size), lambda: check_speed(device, sizes, repeats, warm_up)):
        new = run()
        rows.extend(new)
        for name, result, detail, seconds in new:  # row by row: a lease cut short still shows what ran
            print(f"| {name} | {result} | {detail} | {seconds:.2f} |", flush=True)
    failed = [r[0] for r in rows if r[1] == "FAIL"]
    print(f"\n{len(rows)} checks, {len(failed)} failed" + (f": {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
