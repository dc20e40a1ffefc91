"""Train the bundled restorer further on a borrowed GPU, in one call with a fixed time budget.

Two steps, for a GPU machine that can reach nothing (no package index, no photo source):

    # here: the recipe search's 62 photos as JPEG, 1280 px at most (13 MB: the trip takes 64 MiB
    # with the repository), into a folder git ignores (.git/info/exclude)
    python scripts/gpu_lease.py pack --photos data/train_more --max-side 1280 -o .lease/
    # there, from the repository root, with a Python that has torch, torchvision, numpy, Pillow,
    # tifffile, safetensors, PyYAML and tqdm (imagecodecs is not needed: nothing writes PNG):
    PYTHONPATH=src python3 scripts/gpu_lease.py train .lease/ --minutes 7 --out OUT/ --snapshots 5 \
        --stage1 records/recipe_search/final-stage1-small_q4/stage1.safetensors --every 400 \
        --opt train.losses.pixel_kind=charbonnier train.losses.frequency=0.1 train.losses.grid=1

``train`` continues the bundled restorer (``stage2.init_from``; ``--fresh``: a new one, e.g. of
the search's winning size) against that stage 1 for
``--minutes`` (``vqcnir train --time-limit``), exports the EMA weights as an fp16 safetensors
file into OUT and prints a short table. With ``pack --val`` it validates on those pairs. Score that file here with the model card's
``vqcnir evaluate ... --weights OUT/restorer-N.safetensors`` before bundling it. The restorer is
trained with L1 + code alignment only: the perceptual-loss weights (66 MB) do not travel.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

PHOTOS, STAGE1, VAL = "photos", "stage1.safetensors", "val"
VAL_SIDES = ("low_blur_noise", "high_sharp_scaled")
MAX_PACK_MB = 30  # the machine takes 64 MiB with the repository (about 32 MB: the bundled model, the records)


def pack(args) -> int:
    import torch
    from PIL import Image

    from vqcnir.errors import VQCNIRError
    from vqcnir.imagefiles import images_under, read_image
    from vqcnir.weights import convert

    out = Path(args.out)
    (out / PHOTOS).mkdir(parents=True, exist_ok=True)
    photos = images_under(Path(args.photos))
    for path in photos:
        pixels = (read_image(path).rgb * 255 + 0.5).clip(0, 255).astype("uint8")
        photo = Image.fromarray(pixels)
        if args.max_side:  # what travels is capped at 64 MiB with the repository
            photo.thumbnail((args.max_side, args.max_side), Image.LANCZOS)
        photo.save(out / PHOTOS / f"{path.stem}.jpg", quality=90, subsampling=0)
    if args.stage1:  # else train names one that travels anyway (a committed record)
        convert(args.stage1, out / STAGE1, overwrite=True, dtype=torch.float16)
    if args.val:  # the validation pairs travel as they are (PNG: the ground truth stays exact)
        for side in VAL_SIDES:
            if not (Path(args.val) / side).is_dir():
                raise VQCNIRError(f"{args.val}: has no {side}/ folder of validation pairs")
            shutil.copytree(Path(args.val) / side, out / VAL / side, dirs_exist_ok=True)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
    print(f"packed {len(photos)} photos{' and stage 1' if args.stage1 else ''} into {out}: {size:.1f} MB")
    if size > MAX_PACK_MB:
        print(f"error: {size:.0f} MB is more than the {MAX_PACK_MB} MB that can travel", file=sys.stderr)
        return 1
    return 0


def train(args) -> int:
    import torch

    from vqcnir.train import load_config, run_training
    from vqcnir.weights import convert

    lease, out = Path(args.lease), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = Path(tempfile.mkdtemp(prefix="vqcnir-lease-"))
    workers = max(0, min(12, (os.cpu_count() or 2) - 2))
    start_from = _start_from(args.fresh, args.init_from)
    fixed_val, val_pairs = _fixed_validation(lease / VAL)
    cfg = load_config(f"{args.preset}-stage2", [
        "name=lease", f"experiments_root={runs.as_posix()}", f"data.root={(lease / PHOTOS).as_posix()}",
        f"stage2.stage1_checkpoint={(args.stage1 or lease / STAGE1).as_posix()}",
        *start_from, f"data.crop={args.crop}", f"data.batch_size={args.batch}", f"data.num_workers={workers}",
        f"train.optim_g.lr={args.lr}", "train.scheduler.milestones=[1000000]", "train.total_iter=1000000",
        "train.losses.perceptual=0", "train.losses.adversarial=0", "logging.tensorboard=false",
        "logging.progress_bar=false", f"logging.save_every={args.every}", f"val.every={args.every}",
        "val.grid_images=0",  # no pictures: they don't come back, and PNG writing needs imagecodecs there
        *fixed_val, *args.opt])
    start = time.monotonic()
    result = run_training(cfg, device=args.device, time_limit=args.minutes * 60)
    wall = time.monotonic() - start
    it = result["iter"]
    weights = out / f"restorer-{it}.safetensors"
    models = runs / "lease" / "models"
    convert(models / "net_g_latest.pth", weights, overwrite=True, dtype=torch.float16)
    # earlier saves too, to be scored at home (the return trip takes 8 files): the last N before the end
    earlier = sorted((int(p.stem.rsplit("_", 1)[1]), p) for p in models.glob("net_g_[0-9]*.pth"))
    earlier = [(n, path) for n, path in earlier if n != it]
    for n, path in earlier[-args.snapshots:] if args.snapshots > 0 else []:
        convert(path, out / f"restorer-{n}.safetensors", overwrite=True, dtype=torch.float16)
    shutil.copy(runs / "lease" / "log.txt", out / "train-log.txt")
    steps = max(result["iters"], 1)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    best = result["best"]
    best = f"{best['metric']} {best['value']:.2f} at {best['iter']}" if best else "none yet"
    rows = [("device", device), ("iterations", f"{it} ({args.batch} x {args.crop}²)"),
            ("wall time", f"{wall / 60:.1f} min"), ("seconds per iteration", f"{result['step_time'] / steps:.3f}"),
            ("data wait", f"{100 * result['data_time'] / max(result['step_time'], 1e-9):.0f} %"),
            ("validation", f"{val_pairs} fixed pairs" if val_pairs else "held-back training photos"),
            ("best validation", best),
            ("weights", str(weights))]
    for name, value in rows:
        print(f"| {name} | {value} |")
    return 0


def _start_from(fresh: bool, init_from: Path | None) -> list[str]:
    """Config overrides for the restorer to continue: none for a fresh one, else that checkpoint
    (the bundled one by default) with every field of its network when the file records them
    (safetensors exports do; the stage presets would otherwise switch AIEM and DBCA on)."""
    import json

    from safetensors import safe_open

    from vqcnir.zoo import resolve_weights

    if fresh:
        return []
    start = Path(init_from) if init_from else resolve_weights(None)
    if start.suffix != ".safetensors":
        return [f"stage2.init_from={start.as_posix()}"]
    with safe_open(str(start), framework="pt") as f:
        network = json.loads((f.metadata() or {}).get("vqcnir_config", "{}"))
    return [f"stage2.init_from={start.as_posix()}", *(f"model.{k}={json.dumps(v)}" for k, v in network.items())]


def _fixed_validation(val: Path) -> tuple[list[str], int]:
    """Config overrides to validate on the packed pairs (whole images), and how many there are."""
    if not val.is_dir():
        return [], 0
    pairs = len(list((val / VAL_SIDES[1]).rglob("*.png")))
    return [f"val.night_dir={(val / VAL_SIDES[0]).as_posix()}", f"val.gt_dir={(val / VAL_SIDES[1]).as_posix()}",
            "val.crop=null", f"val.num_images={pairs}"], pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="here: write the photos (JPEG) and stage 1 (fp16) that travel")
    p.add_argument("--photos", required=True, help="folder of the restorer's training photos")
    p.add_argument("--stage1", help="stage-1 checkpoint the restorer trains against (else train's --stage1 names one)")
    p.add_argument("--max-side", type=int, help="shrink photos to at most this many pixels a side for the trip")
    p.add_argument("-o", "--out", required=True, help="folder to write (carried to the GPU machine)")
    p.add_argument("--val", help="validation pairs (low_blur_noise/, high_sharp_scaled/) to validate on there")
    p.set_defaults(func=pack)
    t = sub.add_parser("train", help="there: continue the restorer for --minutes, export fp16 weights")
    t.add_argument("lease", help="the folder `pack` wrote")
    t.add_argument("--minutes", type=float, required=True, help="training time; the last save and the export follow it (about a minute)")
    t.add_argument("--out", required=True, help="folder for the exported weights")
    t.add_argument("--preset", default="small")
    t.add_argument("--stage1", type=Path, help="stage-1 checkpoint (default: the one packed)")
    t.add_argument("--snapshots", type=int, default=0, help="also export the last N saves before the end")
    start = t.add_mutually_exclusive_group()
    start.add_argument("--init-from", type=Path, help="restorer to continue (default: the bundled model)")
    start.add_argument("--fresh", action="store_true",
                       help="train a new restorer (e.g. of the recipe search's winning size) instead")
    t.add_argument("--crop", type=int, default=256)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--lr", type=float, default=1e-4)
    t.add_argument("--every", type=int, default=1000, help="validate and save every N iterations")
    t.add_argument("--device", default="auto")
    t.add_argument("--opt", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="further config overrides, as for vqcnir train")
    t.set_defaults(func=train)
    args = parser.parse_args(argv)
    from vqcnir.errors import VQCNIRError

    try:
        return args.func(args)
    except VQCNIRError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
