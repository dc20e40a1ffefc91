"""Training speed: iterations per second, loader share of the step time and peak memory, for each
shipped config and precision. Each measurement runs in its own process (clean peak memory).

    python benchmarks/train_speed.py                                  # tiny + small, fp32 + bf16
    python benchmarks/train_speed.py --configs paper-stage1 paper-stage2 --iters 2 --warmup 1
    python benchmarks/train_speed.py --data synth                     # the real on-the-fly pipeline

The compute is the config's own (network, crop, batch, losses, discriminator); the data come from
``--data``: ``synthetic`` (procedural tensors, no decoding) or ``synth`` (night/blur pairs
synthesised on the fly by vqcnir.data from generated photos, the most expensive pipeline), with
the config's number of loader workers. Stage 2 starts from a freshly initialised stage-1
checkpoint. Prints a Markdown table (and JSON with --json).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_CONFIGS = ["tiny-stage1", "tiny-stage2", "small-stage1", "small-stage2"]


def _photos(folder: Path, n: int, size: int) -> None:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        base = rng.random((8, 8, 3))
        img = Image.fromarray((base * 255).astype("uint8")).resize((size, size), Image.BICUBIC)
        img.save(folder / f"photo_{i:03d}.png")


def measure(config: str, precision: str, iters: int, warmup: int, data: str, device: str,
            workdir: Path, extra: list[str]) -> dict:
    import torch

    from vqcnir.nn import VQGAN
    from vqcnir.train import load_config
    from vqcnir.train import Trainer
    from vqcnir.weights import save_checkpoint

    opts = [f"experiments_root={workdir.as_posix()}", f"train.precision={precision}",
            "logging.tensorboard=false", "logging.progress_bar=false", f"data.kind={data}"]
    base = load_config(config, [*opts, "data.root=unused", "stage2.stage1_checkpoint=unused", *extra])
    if data == "synth":
        photos = workdir / "photos"
        _photos(photos, 24, max(base.data.crop * 2, 256))
        opts.append(f"data.root={photos.as_posix()}")
    if base.stage == 2:
        torch.manual_seed(0)
        ckpt = workdir / "stage1.pth"
        net_cfg = base.model.network_config()
        save_checkpoint(ckpt, VQGAN(net_cfg).state_dict(), net_cfg)
        opts.append(f"stage2.stage1_checkpoint={ckpt.as_posix()}")
    if data == "synthetic":
        opts.append(f"data.synth_length={max(64, base.data.batch_size * (iters + warmup))}")
    cfg = load_config(config, [*opts, *extra])
    trainer = Trainer(cfg, device=device)
    try:
        loader = iter(trainer.loader)
        data_t = step_t = 0.0
        for i in range(warmup + iters):
            if trainer.device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            batch = next(loader)
            t1 = time.perf_counter()
            trainer.train_step(batch, i)
            if trainer.device.type == "cuda":
                torch.cuda.synchronize()
            t2 = time.perf_counter()
            if i >= warmup:
                data_t += t1 - t0
                step_t += t2 - t0
        if trainer.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated() / 2**30
            where = "GPU"
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
            where = "RSS"
        return {"config": config, "precision": trainer.precision, "device": trainer.device.type,
                "batch": cfg.data.batch_size, "crop": cfg.data.crop, "perceptual": trainer.perceptual_kind,
                "data": data, "iters": iters, "it_per_s": iters / step_t, "s_per_it": step_t / iters,
                "loader_share": data_t / step_t, "peak_gib": peak, "peak_kind": where,
                "threads": torch.get_num_threads()}
    finally:
        trainer.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS)
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--data", default="synthetic", choices=["synthetic", "synth"])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--opt", nargs="+", default=[], help="extra config overrides for every run")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--one", nargs=2, metavar=("CONFIG", "PRECISION"), help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.one:
        with tempfile.TemporaryDirectory() as tmp:
            result = measure(args.one[0], args.one[1], args.iters, args.warmup, args.data, args.device,
                             Path(tmp), args.opt)
        print("RESULT " + json.dumps(result))
        return 0

    results = []
    for config in args.configs:
        for precision in args.precisions:
            cmd = [sys.executable, __file__, "--one", config, precision, "--iters", str(args.iters),
                   "--warmup", str(args.warmup), "--data", args.data, "--device", args.device]
            if args.opt:
                cmd += ["--opt", *args.opt]
            done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
            line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if line is None:
                print(f"{config} {precision}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
                continue
            results.append(json.loads(line[7:]))
            r = results[-1]
            print(f"{config} {r['precision']}: {r['it_per_s']:.3f} it/s", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    print("| config | device | precision | batch × crop | perceptual | data | it/s | s/it | loader share | peak memory |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['config']} | {r['device']} ({r['threads']} threads) | {r['precision']} | {r['batch']} × {r['crop']}² | "
              f"{r['perceptual']} | {r['data']} | {r['it_per_s']:.3f} | {r['s_per_it']:.2f} | "
              f"{100 * r['loader_share']:.1f}% | {r['peak_gib']:.2f} GiB ({r['peak_kind']}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
