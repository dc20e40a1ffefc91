"""What a run reports: ``log.txt`` and the terminal, TensorBoard, the resolved ``config.yaml``.

Only the main process writes; the others return at once (after their share of any all-reduce).
"""

from __future__ import annotations

import math
import sys
import time

import torch
import yaml

from ..imagefiles import write_text
from . import distributed as D
from .meters import Window, codebook_stats, format_duration
from .resume import export


def write_line(t, line: str) -> None:
    if not t.dist.is_main:
        return
    from tqdm import tqdm

    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    if t.log_file is not None:
        t.log_file.write(f"{stamp} {line}\n")
        t.log_file.flush()
    tqdm.write(line, file=sys.stderr)


def open_logs(t) -> None:
    """Open log.txt and TensorBoard, write config.yaml (fresh runs), and say what starts."""
    t.tb = None
    t.log_file = None
    if not t.dist.is_main:
        return
    t.log_file = open(t.exp_dir / "log.txt", "a", encoding="utf-8")
    resolved = t.cfg.to_dict()
    resolved["train"]["losses"]["perceptual_net"] = t.perceptual_kind
    if t.start_iter == 0:
        write_text(t.exp_dir / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))
    if t.cfg.logging.tensorboard:
        try:
            from torch.utils.tensorboard import SummaryWriter

            t.tb = SummaryWriter(str(t.exp_dir / "tb"), purge_step=t.start_iter or None)
        except ImportError:
            t.log("tensorboard is not installed (pip install tensorboard): logging to log.txt only")
    n_train = sum(p.numel() for p in t.net.parameters() if p.requires_grad)
    n_all = sum(p.numel() for p in t.net.parameters())
    what = "resumed" if t.start_iter else "started"
    t.log(f"{what} {t.cfg.name}: stage {t.cfg.stage}, {n_train:,} of {n_all:,} parameters trained, "
          f"{t.dist.world} process(es) on {t.device.type}, {t.precision}, global batch "
          f"{t.cfg.data.batch_size} x {t.cfg.data.crop}², perceptual loss: {t.perceptual_kind}, "
          f"{len(t.train_set)} training / {len(t.val_set)} validation items")
    for note in (t.fresh_note, t.precision_note):
        if note:
            t.log(note)
    if not t.start_iter:
        for note in t.stage.notes:
            t.log(note)
    else:
        t.log(f"resumed from {t.resumed_from} at iteration {t.start_iter}")
        for p in t.broken_states:
            t.log(f"skipped damaged training state {p}")
        if t.schedule_note:
            t.log(t.schedule_note)


def log_window(t, it: int, window: Window) -> None:
    """The mean losses, code usage and speed of the window's iterations, over all processes."""
    keys, n = sorted(window.sums), window.n
    values = torch.tensor([window.sums[k] / n for k in keys] + [window.data, window.step], dtype=torch.float64)
    values = D.all_reduce_sum(values.to(t.device), t.dist).cpu() / t.dist.world
    counts = D.all_reduce_sum(t.code_counts.clone(), t.dist)
    t.code_counts.zero_()
    if not t.dist.is_main:
        return
    means = dict(zip(keys, values[:-2].tolist()))
    data_time, step_time = values[-2].item(), values[-1].item()
    t.timings.history.append((it, means))
    speed = n / step_time if step_time > 0 else float("nan")
    eta = (t.cfg.train.total_iter - it) / speed if speed > 0 else float("nan")
    used, perplexity = codebook_stats(counts)
    lr = t.opt_g.param_groups[0]["lr"]
    losses = " ".join(f"{k} {v:.4f}" for k, v in means.items() if k != "total")
    t.log(f"iter {it:,}/{t.cfg.train.total_iter:,}  lr {lr:.2e}  {losses}  | codes {used}/"
          f"{counts.numel()} used, perplexity {perplexity:.1f}  | {speed:.2f} it/s, data "
          f"{100 * data_time / max(step_time, 1e-12):.1f}%  eta {format_duration(eta)}")
    if t.tb is not None:
        for k, v in means.items():
            t.tb.add_scalar(f"train/{k}", v, it)
        t.tb.add_scalar("train/lr", lr, it)
        t.tb.add_scalar("codebook/used", used, it)
        t.tb.add_scalar("codebook/perplexity", perplexity, it)
        t.tb.add_scalar("speed/it_per_s", speed, it)
        t.tb.flush()


def log_validation(t, it: int, result: dict[str, float]) -> None:
    """Log a validation result; export ``net_g_best.pth`` when it is the best so far."""
    from ..metrics import SPECS

    name = t.cfg.val.best_metric
    value = result.get(name)
    text = "  ".join(f"{k} {v:.4f}" for k, v in result.items())
    if t.cfg.train.cpu_budget_min is not None:
        text += f"  (cpu {t.cpu_seconds() / 60:.1f} min)"
    better = value is not None and math.isfinite(value) and (
        not t.best or (value > t.best["value"] if SPECS[name].higher_is_better else value < t.best["value"]))
    if better:
        t.best = {"metric": name, "value": value, "iter": it}
        export(t, t.exp_dir / "models" / "net_g_best.pth", it)
    best = f"  (best {t.best['metric']} {t.best['value']:.4f} @ {t.best['iter']})" if t.best else ""
    t.log(f"validation @ {it}: {text}{best}")
    if t.tb is not None:
        for k, v in result.items():
            t.tb.add_scalar(f"val/{k}", v, it)


def close_logs(t) -> None:
    if t.tb is not None:
        t.tb.close()
        t.tb = None
    if t.log_file is not None:
        t.log_file.close()
        t.log_file = None
