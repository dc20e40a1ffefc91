"""The default model's fixed-budget recipe search (docs/recipe_search.md).

Every arm trains stage 2 for the same CPU time (``train.cpu_budget_min``: CPU-seconds of the
training process and its loader workers, so a busy shared machine slows an arm down but does not
cut its budget) from its family's stage 1, which also gets a fixed CPU budget. Each arm
validates on one fixed set of synthetic pairs (``val.night_dir``/``val.gt_dir``) during
training and is scored on it at the end: PSNR, GT-mean PSNR, SSIM, blockiness8 and blockiness4 (the 8- and 4-px code grids).

    python scripts/recipe_search.py run --photos data/train --val data/valset/test --root experiments/search
    python scripts/recipe_search.py run ... --arms control,no_perc      # some arms only
    python scripts/recipe_search.py report --root experiments/search    # the table and the plot
    python scripts/recipe_search.py final --arm ARM --photos data/train --val data/valset   # the winner, longer
    python scripts/recipe_search.py final --arm ARM ... --opt train.losses.frequency=0.1     # with other losses
    python scripts/recipe_search.py checkpoints --run stage1-small --val data/valset   # PSNR, grid per checkpoint

Every finished run is also copied into the committed record (``--record``, default
``records/recipe_search/``): its log, config and scores, and for a stage 1 its weights (fp16
safetensors, 5.6 MB for the small network; the arms train against this file, so that a search
continued from the record trains against the same weights). A run found finished in the record is not
trained again, so the search survives the loss of its working folder (``--root``), and
``report`` re-makes the table and plot from the record alone.

``final`` trains the winning arm on for as long as validation keeps improving: ``final-stage1-FAMILY``
starts from the family's recorded stage 1 (``stage1.init_from``; the search's own runs stay as
they were scored) and a stage 2 named ``final-ARM`` trains against its best weights, starting from the
arm's restorer while the arm's working folder exists; each stops at its CPU budget or once
``--patience`` validations in a row have not beaten its best (``train.patience``), after
``--plateau-drops`` earlier plateaus each halved its learning rates (``train.plateau_drops``). These runs
outlast a session, so they go in legs: each pause records the latest weights, and a leg whose
working folder was lost continues from them (``legs.json`` says how many CPU-minutes came before).

Each run is single-threaded (CPU time then measures work, not threads spinning at barriers), so
two searches with different ``--arms`` lists can share a 2-core machine; they never train the
same run at once. ``run`` is resumable: killed (or stopped by --hours) and started again with the same
arguments, it continues the run it was in and skips finished ones. Ctrl+C (or SIGTERM) is passed
on to the training, which stops at its next iteration with a state saved; a ``final`` leg stopped
so is recorded like one stopped by --hours, and nothing further starts. Precision: bf16 autocast
where the CPU has native bf16 (AVX-512 BF16 / AMX), fp32 elsewhere, where bf16 is slower.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

# stage-1 families: the network that stage 1 fixes (widths, codebook), as vqcnir train overrides
FAMILIES: dict[str, list[str]] = {
    "small": ["model.preset=small"],
    # half the width, a quarter of the codebook: about a quarter of the multiply-adds
    "narrow": ["model.preset=small", "model.width=16", "model.codebook_size=256", "model.code_dim=64",
               "model.norm_groups=8"],
    # the codebook at 1/4 scale: a 4-px code grid
    "small_q4": ["model.preset=small", "model.quant_scale=4"],
    # interpolating instead of nearest upsampling in G and D: the mosaic of every arm comes from
    # G (its stage-1 reconstructions grow blockier as they sharpen)
    "small_bilinear": ["model.preset=small", "model.upsample=bilinear"],
}

# the shipped restorer's recipe (L1 + code alignment + ST-LPIPS-VGG, no GAN, 2 x 128² crops)
CONTROL = ["train.losses.adversarial=0", "data.crop=128", "data.batch_size=2"]

# stage-2 arms: (family, overrides on top of CONTROL)
ARMS: dict[str, tuple[str, list[str]]] = {
    "control": ("small", []),
    "no_perc": ("small", ["train.losses.perceptual=0"]),
    "narrow": ("narrow", []),
    "q4": ("small_q4", []),
    "fft": ("small", ["train.losses.frequency=0.1"]),
    "no_ca": ("small", ["train.losses.codebook=0"]),
    "charbonnier": ("small", ["train.losses.pixel_kind=charbonnier"]),
    "no_aiem": ("small", ["model.use_aiem=false"]),
    "no_dbca": ("small", ["model.use_dbca=false"]),
    "d_only": ("small", ["model.use_aiem=false", "model.use_dbca=false"]),
    # added from the results: DBCA is half of the small model's restore time (the 1-MP target)
    "dbca3": ("small", ["model.dbca_levels=3"]),
    "dbca2": ("small", ["model.dbca_levels=2"]),
    # night images as bright as a fraction of their scene (the haze of dark scenes); the
    # validation pairs keep the absolute exposure, so read its GT-mean PSNR, not its PSNR
    "relative": ("small", ["data.degrade.darken.relative=true", "data.degrade.darken.exposure=[0.1,0.5]"]),
    # the leading fast network (no AIEM, no DBCA) with a bilinear G; its stage 1 came out blockier
    # than the nearest one (docs/recipe_search.md), so this arm runs for the record only
    "d_only_bilinear": ("small_bilinear", ["model.use_aiem=false", "model.use_dbca=false"]),
    # added from the results: every restorer plateaus near its G's reconstruction, since D sees
    # the night image only through the 1/8-scale feature; the encoder's finer features let detail
    # bypass the codes (stage 2 only, so it starts from the same stage 1 as the final)
    "d_only_skips": ("small", ["model.use_aiem=false", "model.use_dbca=false", "model.encoder_skips=true"]),
    # added from the results: the codebook at 1/4 scale reconstructs better and with hardly any
    # grid (its stage 1, docs/recipe_search.md), and the fast network restores 1 MP in 3.3 s with it
    "d_only_q4": ("small_q4", ["model.use_aiem=false", "model.use_dbca=false"]),
    # the control again with another seed: how far apart two runs of one recipe end
    "control_seed1": ("small", ["seed=1"]),
    # added after the final: its restorer stops improving within about 20 CPU-minutes on 31 photos;
    # d_only_q4 again with the restorer trained on --more-photos (`vqcnir data photos --more`: the
    # training photos plus 31 more) against the same stage 1
    "more_photos": ("small_q4", ["model.use_aiem=false", "model.use_dbca=false"]),
    # added from the final's checkpoints: as its restorer improves, its 4-px grid grows
    # (blockiness4 1.06 -> 1.12 in 1,200 iterations); more_photos with the grid loss
    "grid_loss": ("small_q4", ["model.use_aiem=false", "model.use_dbca=false", "train.losses.grid=1"]),
}
MORE_PHOTOS_ARMS = {"more_photos", "grid_loss"}  # their stage 2 trains on --more-photos instead of --photos

# the code grid of each codebook scale, measured on every scored output (runs scored before
# blockiness4 existed have only blockiness8)
GRIDS = ("blockiness8", "blockiness4")

PRESET = "small"  # the shipped presets the runs build on (tests use "tiny")
STAGE1_CPU_MIN = 60.0
STAGE2_CPU_MIN = 45.0
VAL_EVERY = 400
RECORD = Path(__file__).resolve().parents[1] / "records" / "recipe_search"
RECORD_FILES = ("log.txt", "config.yaml", "scores.json", "finished.json")  # finished.json last: all is there
STAGE1_WEIGHTS = "stage1.safetensors"  # in the record: what every arm of the family trains against
RESTORER = "restorer.safetensors"  # in the record: the final run's best restorer (fp16), to ship
LATEST_WEIGHTS, LEGS = "latest.safetensors", "legs.json"  # a long run's last pause (final)


def _precision() -> str:
    import torch

    return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"


def _train(root: Path, record: Path, name: str, preset: str, opts: list[str], budget: float,
           deadline: float, ranks: int = 1, keep: bool = True) -> str:
    """Train (or resume) one run unless the record holds it finished; returns "done", or "paused"
    if --hours ran out first. Two searches running side by side (one per core) wait for each
    other's runs, never share one. ``keep=False``: the caller records the run once it is scored."""
    if (record / name / "finished.json").is_file():
        return "done"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        status = _train_locked(root, name, preset, opts, budget, deadline, ranks)
    if status == "done" and keep:
        _keep(root, record, name)
    return status


def _keep(root: Path, record: Path, name: str) -> None:
    """Copy a finished run's log, config and scores (and a stage 1's weights) into the record."""
    import torch
    from vqcnir.weights import convert

    kept = record / name
    kept.mkdir(parents=True, exist_ok=True)
    weights = _kept_weights(name)
    if weights and not (kept / weights[0]).is_file():
        convert(root / name / "models" / weights[1], kept / weights[0], dtype=torch.float16)
    for file in RECORD_FILES:
        if (root / name / file).is_file():
            _copy_relative(root / name / file, kept / file)


def _copy_relative(src: Path, dst: Path) -> None:
    """Copy a text file into the record, which is committed: its absolute paths become relative
    to where the search ran, so none of this machine's paths are kept."""
    text = re.sub(r"(?<![\w.~])/(?:[\w.-]+/)+[\w.-]+", lambda m: os.path.relpath(m.group(0)), src.read_text())
    dst.write_text(text)


def _kept_weights(name: str) -> tuple[str, str] | None:
    """The weights a finished run leaves in the record: (file there, the checkpoint it comes from)."""
    if name.startswith("stage1-"):
        return STAGE1_WEIGHTS, "net_g_latest.pth"  # as the arms used it, at its budget
    if name.startswith("final-stage1-"):
        return STAGE1_WEIGHTS, "net_g_best.pth"
    if name.startswith("final-"):
        return RESTORER, "net_g_best.pth"
    return None


def _recorded(root: Path, record: Path, name: str, file: str) -> Path | None:
    """A run's file from the working folder, else from the record; None if neither has it."""
    return next((p for p in (root / name / file, record / name / file) if p.is_file()), None)


def _train_locked(root: Path, name: str, preset: str, opts: list[str], budget: float, deadline: float,
                  ranks: int) -> str:
    """``budget``: CPU-minutes of each process; ``ranks`` > 1 runs that many DDP processes (the
    same global batch, sliced), which uses idle cores better than threads do."""
    exp = root / name
    finished = exp / "finished.json"
    if finished.is_file():
        return "done"
    minutes = (deadline - time.monotonic()) / 60
    if minutes <= 1 or STOPPED_BY:
        return "paused"
    launch = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}"] if ranks > 1 else []
    cmd = [sys.executable, *launch, "-m", "vqcnir", "train", "-c", preset, "--time-limit", f"{minutes - 1:.1f}",
           "--opt", f"name={name}", f"experiments_root={root.as_posix()}", "train.total_iter=1000000",
           f"train.precision={_precision()}", f"train.cpu_budget_min={budget}", "logging.save_every=400",
           "logging.progress_bar=false", *opts]
    if exp.is_dir():  # also a run killed before its first save: train --resume starts it afresh
        cmd.append("--resume")
    print("$", " ".join(cmd), flush=True)
    # one thread per process: CPU-seconds then measure work, not threads spinning at barriers on
    # a busy machine, and two runs side by side use both cores
    code = _run_passing_on_stops(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if code and not STOPPED_BY:
        raise SystemExit(f"error: training {name} failed (exit status {code}); its log: {exp / 'log.txt'}")
    ends = re.findall(r"(?:finished|stopped) \S+ at iteration .*", (exp / "log.txt").read_text())
    if not ends or not ("CPU budget" in ends[-1] or "train.patience" in ends[-1]):
        return "paused"
    finished.write_text(json.dumps({"finished": time.strftime("%Y-%m-%d %H:%M")}) + "\n")
    return "done"


STOPPED_BY: list[int] = []  # the stop signal this search received, if any


def _run_passing_on_stops(cmd: list[str], env: dict) -> int:
    """Run a training in its own session (the terminal's Ctrl+C reaches this process only) and
    pass SIGINT/SIGTERM on to it: it then stops at its next iteration with a state saved (a
    second one quits it at once), where a KeyboardInterrupt here would kill it and lose
    everything since its last save."""
    child = subprocess.Popen(cmd, env=env, start_new_session=True)

    def pass_on(signum, frame):
        STOPPED_BY.append(signum)
        child.send_signal(signum)

    previous = {s: signal.signal(s, pass_on) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return child.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _score(root: Path, arm: str, val: Path, weights_file: str) -> dict:
    """Restore the validation night images with one of the run's EMA weights and score them."""
    from vqcnir.metrics.evaluate import evaluate_folders

    out = root / arm / "val_restored"
    weights = root / arm / "models" / weights_file
    subprocess.run([sys.executable, "-m", "vqcnir", "restore", str(val / "low_blur_noise"), "-o", str(out),
                    "--recursive", "--overwrite", "--weights", str(weights), "--device", "cpu"], check=True,
                   stdout=subprocess.DEVNULL)
    gt = val / "high_sharp_scaled"
    plain = evaluate_folders(out, gt, ["psnr", "ssim", *GRIDS], progress=False)
    gt_mean = evaluate_folders(out, gt, ["psnr"], progress=False, gt_mean=True)
    truth = evaluate_folders(gt, None, list(GRIDS), progress=False)
    return {**plain.means, "gt_mean_psnr": gt_mean.means["psnr"], **{f"gt_{g}": truth.means[g] for g in GRIDS}}


def _curve(log: str, metric: str = "psnr") -> list[tuple[float, float]]:
    """(CPU-minutes, validation ``metric``) pairs from a run's log (runs from before a metric was
    logged have none of it)."""
    return [(float(m.group(2)), float(m.group(1))) for m in
            re.finditer(rf"validation @ \d+:.*? {metric} ([\d.]+).*?\(cpu ([\d.]+) min\)", log)]


def _val_opts(val: Path, stage: int) -> list[str]:
    """Validation on the fixed set; stage 1 reconstructs its sharp side. A restorer's plain PSNR
    mostly follows its guess of each scene's brightness, which the night image does not tell, so
    stage 2 also logs GT-mean PSNR (structure, noise and colour)."""
    night = val / ("high_sharp_scaled" if stage == 1 else "low_blur_noise")
    return [f"val.night_dir={night.as_posix()}", f"val.gt_dir={(val / 'high_sharp_scaled').as_posix()}",
            "val.num_images=24", "val.crop=null", f"val.every={VAL_EVERY}"] + \
        (["val.metrics=[psnr,ssim,gt_mean_psnr]"] if stage == 2 else [])


def _stage1_opts(photos: str, family: str, val: Path) -> list[str]:
    return [f"data.root={photos}", "data.kind=sharp", "train.losses.adversarial=0", "codebook.restart_every=200",
            *FAMILIES[family], *_val_opts(val, 1)]


def _stage2_opts(photos: str, family: str, arm: str, stage1: Path, val: Path) -> list[str]:
    return [f"data.root={photos}", f"stage2.stage1_checkpoint={stage1.as_posix()}",
            *FAMILIES[family], *CONTROL, *ARMS[arm][1], *_val_opts(val, 2)]


def _scores(root: Path, record: Path, name: str, val: Path, weights_file: str = "net_g_latest.pth") -> dict:
    scores = _recorded(root, record, name, "scores.json")
    if scores is None:
        scores = root / name / "scores.json"
        scores.write_text(json.dumps(_score(root, name, val, weights_file), indent=2) + "\n")
    _keep(root, record, name)
    print(f"{name}: {scores.read_text()}", flush=True)
    return json.loads(scores.read_text())


def _check_arms(arms: list[str], more_photos: str | None = None) -> None:
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise SystemExit(f"error: unknown arm(s) {', '.join(unknown)}; known: {', '.join(ARMS)}")
    if not more_photos and (needs := [a for a in arms if a in MORE_PHOTOS_ARMS]):
        raise SystemExit(f"error: arm(s) {', '.join(needs)} train on --more-photos DIR; give it")


def _arm_photos(args, arm: str) -> str:
    """The photos an arm's restorer trains on; stage 1 always trains on --photos."""
    return args.more_photos if arm in MORE_PHOTOS_ARMS else args.photos


def run(args) -> int:
    root, val, record = Path(args.root), Path(args.val), Path(args.record)
    deadline = time.monotonic() + args.hours * 3600
    arms = args.arms.split(",") if args.arms else list(ARMS)
    _check_arms(arms, args.more_photos)
    for arm in arms:
        family = ARMS[arm][0]
        stage1 = f"stage1-{family}"
        if _train(root, record, stage1, f"{PRESET}-stage1", _stage1_opts(args.photos, family, val),
                  STAGE1_CPU_MIN, deadline) != "done":
            return 0
        checkpoint = record / stage1 / STAGE1_WEIGHTS
        if _train(root, record, arm, f"{PRESET}-stage2", _stage2_opts(_arm_photos(args, arm), family, arm, checkpoint, val),
                  STAGE2_CPU_MIN, deadline, keep=False) != "done":
            return 0
        _scores(root, record, arm, val)
    return 0


def final(args) -> int:
    root, val, arm, record = Path(args.root), Path(args.val), args.arm, Path(args.record)
    _check_arms([arm], args.more_photos)
    family = ARMS[arm][0]
    if _recorded(root, record, arm, "finished.json") is None:
        raise SystemExit(f"error: arm {arm} has not finished its search run (in {root} or {record})")
    deadline = time.monotonic() + args.hours * 3600
    patience = [f"train.patience={args.patience}", f"train.plateau_drops={args.plateau_drops}"]
    # stage 1 goes on from the family's recorded weights, as a run of its own: the search's stays as scored
    # named by family and arm: a final of another arm starts its own runs instead of going on with these
    stage1_run, stage2_run = f"final-stage1-{family}", f"final-{arm}"
    if _long_run(root, record, stage1_run, f"{PRESET}-stage1", [*_stage1_opts(args.photos, family, val), *patience],
                 "stage1.init_from", record / f"stage1-{family}" / STAGE1_WEIGHTS, args.stage1_cpu_min,
                 deadline, args.ranks) != "done":
        return 0
    # the restorer goes on while its structure improves: its plain PSNR drifts with the brightness it guesses
    opts = [*_stage2_opts(_arm_photos(args, arm), family, arm, record / stage1_run / STAGE1_WEIGHTS, val), *patience,
            "val.best_metric=gt_mean_psnr", *args.opt]
    restorer = root / arm / "models" / "net_g_latest.pth"  # the arm's restorer, while its working folder lasts
    if _long_run(root, record, stage2_run, f"{PRESET}-stage2", opts, "stage2.init_from",
                 restorer if restorer.is_file() else None, args.cpu_min, deadline, args.ranks, keep=False) != "done":
        return 0
    _scores(root, record, stage2_run, val, "net_g_best.pth")  # the best validation, not the patience steps after it
    return 0


def _long_run(root: Path, record: Path, name: str, preset: str, opts: list[str], init_key: str,
              start: Path | None, budget: float, deadline: float, ranks: int, keep: bool = True) -> str:
    """Train a run longer than a session in legs. Each pause records the run's latest weights
    (fp16) and the CPU-minutes it has used; if its working folder is then lost, the next leg
    starts from those weights (with a fresh optimizer and patience count) for the rest of the
    budget, rather than from the beginning. ``budget`` counts the CPU-minutes of all ``ranks``
    processes; the legs record those of one (each process counts its own)."""
    budget /= ranks
    kept = record / name
    legs_file = kept / LEGS
    legs = json.loads(legs_file.read_text()) if legs_file.is_file() else {"leg": 1, "cpu_min_before": 0.0,
                                                                           "cpu_min_run": 0.0}
    if not (root / name).is_dir() and legs_file.is_file():  # paused, then its folder was lost
        start = kept / LATEST_WEIGHTS
        if not start.is_file():  # checked first: a refused leg must not count as one
            raise SystemExit(f"error: {name}: the weights of its last pause ({start}) are not in the record; "
                             "it cannot go on")
        legs = {"leg": legs["leg"] + 1, "cpu_min_before": legs["cpu_min_before"] + legs["cpu_min_run"],
                "cpu_min_run": 0.0}
        legs_file.write_text(json.dumps(legs, indent=2) + "\n")
    if budget <= legs["cpu_min_before"]:
        raise SystemExit(f"error: {name}: its earlier legs used {legs['cpu_min_before']:.1f} of its {budget:g} "
                         "CPU-minutes per process; give it more to go on")
    leg_opts = [*opts, f"{init_key}={start.as_posix()}"] if start else opts
    status = _train(root, record, name, preset, leg_opts, budget - legs["cpu_min_before"], deadline, ranks, keep)
    log = root / name / "log.txt"
    used = re.findall(r"stopped \S+ at iteration .*\(([\d.]+) CPU-min used\)", log.read_text()) if log.is_file() else []
    if status == "paused" and used:
        import torch
        from vqcnir.weights import convert

        kept.mkdir(parents=True, exist_ok=True)
        convert(root / name / "models" / "net_g_latest.pth", kept / LATEST_WEIGHTS, overwrite=True,
                dtype=torch.float16)
        _copy_relative(log, kept / f"log-leg{legs['leg']}.txt")
        legs_file.write_text(json.dumps({**legs, "cpu_min_run": float(used[-1])}, indent=2) + "\n")
    return status


def record(args) -> int:
    """Copy every finished run of --root into the record (``run`` does this as runs finish)."""
    root, kept = Path(args.root), []
    for finished in sorted(root.glob("*/finished.json")):
        _keep(root, Path(args.record), finished.parent.name)
        kept.append(finished.parent.name)
    print(f"recorded in {args.record}: {', '.join(kept) or 'nothing (no finished runs)'}")
    return 0


def report(args) -> int:
    root, record = Path(args.root), Path(args.record)
    rows, logs = [], {}
    for arm, (family, opts) in ARMS.items():
        scores = _recorded(root, record, arm, "scores.json")
        if scores is None:
            continue
        s = json.loads(scores.read_text())
        logs[arm] = _recorded(root, record, arm, "log.txt").read_text()
        iters = max(int(m) for m in re.findall(r"saved iteration (\d+)", logs[arm]))
        change = " ".join(opts) or "(control)"
        rows.append((arm, family, f"{change}` + `--more-photos" if arm in MORE_PHOTOS_ARMS else change, iters, s))
    print("| arm | stage 1 | change | iterations | PSNR | GT-mean PSNR | SSIM | blockiness8 | blockiness4 |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    grid = lambda s, name: f"{s[name]:.3f}" if name in s else "–"
    # ranked by GT-mean PSNR: plain PSNR mostly follows each arm's guess of the scenes' brightness
    for arm, family, change, iters, s in sorted(rows, key=lambda r: -r[4]["gt_mean_psnr"]):
        print(f"| {arm} | {family} | `{change}` | {iters:,} | {s['psnr']:.2f} | {s['gt_mean_psnr']:.2f} | "
              f"{s['ssim']:.4f} | {grid(s, 'blockiness8')} | {grid(s, 'blockiness4')} |")
    truths = {g: s[f"gt_{g}"] for *_, s in rows for g in GRIDS if f"gt_{g}" in s}
    if truths:
        print("\nground truth " + ", ".join(f"{g}: {v:.3f}" for g, v in truths.items()))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for ax, metric, label in zip(axes, ("psnr", "gt_mean_psnr"), ("PSNR", "GT-mean PSNR")):
            for i, (arm, *_) in enumerate(rows):
                curve = _curve(logs[arm], metric)
                if curve:  # one colour per arm in both panels
                    ax.plot(*zip(*curve), marker=".", label=arm, color=f"C{i % 10}")
            ax.set_xlabel("stage-2 CPU-minutes")
            ax.set_ylabel(f"validation {label} (dB)")
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        print(f"plot: {args.plot}")
    return 0


def checkpoints(args) -> int:
    """Score every ``--every``-th saved checkpoint of one run on the validation set: how PSNR and
    the code grid move as it trains. A stage 1 reconstructs the sharp side, a restorer restores
    the night side (and gets a GT-mean PSNR too)."""
    import torch

    from vqcnir import metrics
    from vqcnir.engine import forward_padded
    from vqcnir.imagefiles import read_image
    from vqcnir.metrics.gt_mean import match_gt_mean
    from vqcnir.weights import is_stage1, load_network, read_checkpoint

    run_dir, val = Path(args.root) / args.run, Path(args.val)
    found = {int(m.group(1)): f for f in (run_dir / "models").glob("net_g_*")  # safetensors: exports, e.g. a GPU lease's
             if (m := re.fullmatch(r"net_g_(\d+)\.(pth|safetensors)", f.name))}
    if not found:
        raise SystemExit(f"error: {run_dir / 'models'}: no saved checkpoints")
    log = run_dir / "log.txt"
    cpu = {int(i): float(c) for i, c in re.findall(r"validation @ (\d+):.*?\(cpu ([\d.]+) min\)",
                                                    log.read_text() if log.is_file() else "")}
    gt_files = sorted((val / "high_sharp_scaled").rglob("*.png"))
    gts = [torch.from_numpy(read_image(f).rgb).permute(2, 0, 1)[None] for f in gt_files]
    stage = 1 if is_stage1(read_checkpoint(next(iter(found.values())))[0]) else 2
    inputs = gts if stage == 1 else [torch.from_numpy(read_image(val / "low_blur_noise" / f.relative_to(
        val / "high_sharp_scaled")).rgb).permute(2, 0, 1)[None] for f in gt_files]
    names = ["PSNR", *([] if stage == 1 else ["GT-mean PSNR", "SSIM", "luma / GT"]), *GRIDS]
    digits = {"SSIM": 4, "luma / GT": 3, **{g: 3 for g in GRIDS}}  # PSNRs: 2
    print(f"| iteration | CPU-min | {' | '.join(names)} |")
    print(f"|---:|---:|{'---:|' * len(names)}")
    grid_means = lambda images: [sum(float(metrics.compute(g, x)[0]) for x in images) / len(images) for g in GRIDS]
    curves = []  # per checkpoint: iteration, then one value per name
    for it in sorted(found)[::args.every]:
        model = load_network(found[it], stage=stage)
        with torch.no_grad():
            outs = [forward_padded(model, x).clamp(0, 1) for x in inputs]
        mean = lambda name, pairs: sum(float(metrics.compute(name, o, g)[0]) for o, g in pairs) / len(gts)
        values = [mean("psnr", zip(outs, gts))]
        if stage == 2:
            # a restorer's brightness drifts apart from its structure: GT-mean PSNR and SSIM show the
            # structure, the ratio of mean brightness to the ground truth's shows the drift
            values += [mean("psnr", ((match_gt_mean(o, g), g) for o, g in zip(outs, gts))), mean("ssim", zip(outs, gts)),
                       sum(float(o.mean() / g.mean()) for o, g in zip(outs, gts)) / len(gts)]
        values += grid_means(outs)
        curves.append([it, *values])
        minutes = f"{cpu[it]:.1f}" if it in cpu else "–"  # a run's last save need not follow a validation
        cells = " | ".join(f"{v:.{digits.get(n, 2)}f}" for n, v in zip(names, values))
        print(f"| {it:,} | {minutes} | {cells} |", flush=True)
    print(f"\nground truth {', '.join(GRIDS)}: {', '.join(f'{v:.3f}' for v in grid_means(gts))}")
    if args.plot:
        _plot_checkpoints(args.plot, args.run, names, curves)
    return 0


def _plot_checkpoints(file: str, run: str, names: list[str], rows: list[list[float]]) -> None:
    """One small panel per score against the iteration: a run's learning curves, scored alike."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows_of_panels = -(-len(names) // 3)
    fig, axes = plt.subplots(rows_of_panels, 3, figsize=(11, 3.2 * rows_of_panels), squeeze=False)
    for i, (ax, name) in enumerate(zip(axes.flat, names)):
        ax.plot([r[0] for r in rows], [r[i + 1] for r in rows], marker=".")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("iteration", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    fig.suptitle(f"{run}: every saved checkpoint on the validation pairs", fontsize=10)
    fig.tight_layout()
    fig.savefig(file, dpi=100)
    print(f"plot: {file}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train and score the arms (resumable)")
    r.add_argument("--photos", required=True, help="training photos (neither validation nor test photos)")
    r.add_argument("--val", required=True, help="validation pairs: low_blur_noise/ and high_sharp_scaled/")
    r.add_argument("--root", default="experiments/search")
    r.add_argument("--arms", help=f"comma-separated subset, in order (default all: {','.join(ARMS)})")
    r.add_argument("--hours", type=float, default=1000.0, help="stop (resumably) after this much wall time")
    r.add_argument("--more-photos", help="the restorer's photos for the arms that need more (more_photos)")
    r.set_defaults(func=run)
    k = sub.add_parser("record", help="copy the finished runs of --root into the record")
    k.add_argument("--root", default="experiments/search")
    k.set_defaults(func=record)
    q = sub.add_parser("report", help="print the table of finished arms (and plot their curves)")
    q.add_argument("--root", default="experiments/search")
    q.add_argument("--plot", help="PNG of validation PSNR and GT-mean PSNR against CPU-minutes")
    q.set_defaults(func=report)
    f = sub.add_parser("final", help="train the winning arm on while validation improves (resumable)")
    f.add_argument("--arm", required=True, help="the search's winning arm")
    f.add_argument("--photos", required=True)
    f.add_argument("--more-photos", help="the restorer's photos, for an arm that needs more (more_photos)")
    f.add_argument("--val", required=True)
    f.add_argument("--root", default="experiments/search")
    f.add_argument("--stage1-cpu-min", type=float, default=240.0,
                   help="stage 1's CPU-minutes beyond the search's, all processes (default 240)")
    f.add_argument("--cpu-min", type=float, default=720.0, help="stage 2's CPU-minutes, all processes (default 720)")
    f.add_argument("--patience", type=int, default=6,
                   help="stop a stage once this many validations in a row have not beaten its best (default 6)")
    f.add_argument("--plateau-drops", type=int, default=2,
                   help="halve the learning rates at this many plateaus before the one that stops a stage (default 2)")
    f.add_argument("--hours", type=float, default=1000.0, help="stop (resumably) after this much wall time")
    f.add_argument("--opt", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="stage-2 overrides on top of the arm's, e.g. the losses the loss arms chose")
    f.add_argument("--ranks", type=int, default=2,
                   help="DDP processes, one thread each (default 2: the final runs have the machine to "
                        "themselves); CPU budgets count all of them")
    f.set_defaults(func=final)
    c = sub.add_parser("checkpoints", help="score a run's saved checkpoints on the validation set (PSNR, blockiness)")
    c.add_argument("--run", required=True, help="a run of --root, e.g. stage1-small or d_only")
    c.add_argument("--val", required=True)
    c.add_argument("--root", default="experiments/search")
    c.add_argument("--every", type=int, default=1, help="score every N-th saved checkpoint (default 1)")
    c.add_argument("--plot", help="also draw each score against the iteration into this PNG")
    c.set_defaults(func=checkpoints)
    for command in (r, k, q, f):
        command.add_argument("--record", default=str(RECORD),
                             help="the committed record of finished runs (default records/recipe_search)")
    args = p.parse_args(argv)
    code = args.func(args)
    if STOPPED_BY:
        name = signal.Signals(STOPPED_BY[0]).name
        print(f"stopped by {name}: what was trained is saved; the same command goes on", file=sys.stderr)
        return 128 + STOPPED_BY[0]
    return code


if __name__ == "__main__":
    sys.exit(main())
