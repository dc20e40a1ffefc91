"""The training loop both VQCNIR stages share; what differs lives in ``stage1.py`` (the codebook
autoencoder, dead-code restarts) and ``stage2.py`` (the restorer: frozen parts, code alignment).

One process or many (``torchrun``, DDP); bf16 autocast on GPU; gradient clipping; EMA weights;
skipped (logged) steps on non-finite losses or gradients; atomic checkpoints; exact resume.
The pieces: ``setup.py`` (run folder, networks, optimisers, data), ``step.py`` (one
iteration), ``logs.py`` (log.txt, TensorBoard), ``resume.py`` (checkpoints, training states),
``validation.py``, ``meters.py`` (timings, CPU budget, time limit).

Layout of a run, ``<experiments_root>/<name>/``::

    config.yaml           the resolved config (loadable with -c)
    log.txt               what the progress bar and the log lines said
    models/               net_g_<iter>.pth, net_g_latest.pth, net_g_best.pth ({'params', 'params_ema'})
    training_states/      <iter>.state: everything needed to resume
    visualization/        val_<iter>.png: night | restored | gt, one row per image
    tb/                   TensorBoard event files
"""

from __future__ import annotations

import sys
import time
from contextlib import nullcontext

import torch

from ..engine import choose_device
from . import distributed as D
from . import logs, setup
from .config import TrainConfig
from .meters import Timings, Window, budget_spent, plateaued, process_tree_cpu_seconds, time_to_stop
from .resume import load_training_state, save_run
from .signals import StopRequest
from .stage1 import Stage1
from .stage2 import Stage2
from .step import train_step
from .validation import validate


class Trainer:
    def __init__(self, cfg: TrainConfig, resume: bool = False, device: str = "auto"):
        self.cfg = cfg
        self.stage = Stage1(cfg) if cfg.stage == 1 else Stage2(cfg)
        self.device = choose_device(device)
        self.dist = D.setup(self.device.type)
        if self.device.type == "cuda" and (self.dist.enabled or self.device.index is None):  # torchrun picks the GPU
            self.device = torch.device("cuda", self.dist.local_rank)
        self.exp_dir = cfg.experiment_dir
        self.timings = Timings()
        self.skipped = 0
        self.best: dict = {}
        self.lr_drops = {"count": 0, "iter": 0}  # train.plateau_drops used so far, and the last one's iteration
        self.start_iter = 0
        self.cpu_before = 0.0  # CPU-seconds this run used before this process (resumes)
        self.cpu_start = None  # the process tree's CPU-seconds when fit() began
        self.schedule_note = ""
        self.stop = StopRequest()  # Ctrl+C / SIGTERM during fit(): stop with a state saved
        setup.choose_precision(self)
        state = setup.prepare_dir(self, resume)
        torch.manual_seed(cfg.seed)
        setup.build_networks(self)
        setup.build_losses(self)
        setup.build_optimizers(self)
        if state is not None:
            load_training_state(self, state)
        setup.build_data(self)
        logs.open_logs(self)

    def log(self, line: str) -> None:
        logs.write_line(self, line)

    def autocast(self):
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def train_step(self, batch: dict, it: int) -> dict[str, float]:
        return train_step(self, batch, it)

    def save(self, it: int) -> None:
        if self.dist.is_main:
            save_run(self, it)
        D.barrier(self.dist)

    def cpu_seconds(self) -> float:
        """CPU-seconds this run has used so far, over all its resumes (train.cpu_budget_min)."""
        if self.cpu_start is None:
            return self.cpu_before
        return self.cpu_before + process_tree_cpu_seconds() - self.cpu_start

    def fit(self, deadline: float | None = None) -> dict:
        """Train to ``train.total_iter``; with ``deadline`` (a ``time.monotonic()`` value), stop at
        the first iteration past it, save a resumable state there and return early; the same on
        Ctrl+C or SIGTERM (``signals.py``)."""
        from tqdm import tqdm

        cfg, lg = self.cfg, self.cfg.logging
        total_iter = cfg.train.total_iter
        bar = tqdm(total=total_iter, initial=self.start_iter, unit="it", dynamic_ncols=True,
                   disable=None if self.dist.is_main and lg.progress_bar else True, file=sys.stderr)
        window = Window()
        if cfg.train.cpu_budget_min is not None:
            self.cpu_start = process_tree_cpu_seconds()
        loader = iter(self.loader)
        it = self.start_iter
        stopped_early = spent = stale = False
        try:
            with self.stop:
                while it < total_iter:
                    t0 = time.perf_counter()
                    batch = next(loader)
                    t1 = time.perf_counter()
                    losses = self.train_step(batch, it)
                    it += 1
                    self.stage.after_iteration(self, it, batch)
                    t2 = time.perf_counter()
                    self.timings.add(data=t1 - t0, step=t2 - t0)
                    window.add(losses, data=t1 - t0, step=t2 - t0)
                    bar.update(1)
                    if it % 10 == 0 or it == total_iter:
                        bar.set_postfix_str(" ".join(f"{k} {v:.3g}" for k, v in losses.items() if k != "total"))
                    if it % lg.print_every == 0 or it == total_iter:
                        logs.log_window(self, it, window)
                        window = Window()
                    if it % cfg.val.every == 0 or it == total_iter:
                        if self.dist.is_main:
                            logs.log_validation(self, it, validate(self, it))
                        D.barrier(self.dist)
                        stale = it < total_iter and plateaued(self, it)
                        if stale and self.lr_drops["count"] < cfg.train.plateau_drops:
                            self.lower_learning_rates(it)
                            stale = False
                    spent = it < total_iter and budget_spent(self)
                    saved = it % lg.save_every == 0 or it == total_iter or spent or stale
                    if saved:
                        self.save(it)
                    if spent or stale:
                        break
                    if it < total_iter and time_to_stop(self, deadline):
                        stopped_early = True
                        if not saved:
                            self.save(it)
                        break
        finally:
            bar.close()
        return self._finish(it, stopped_early, spent, stale)

    def lower_learning_rates(self, it: int) -> None:
        """``train.plateau_drops``: multiply every learning rate by ``scheduler.gamma`` and go on."""
        gamma = self.cfg.train.scheduler.gamma
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups if opt is not None else ():
                group["lr"] *= gamma
        self.lr_drops = {"count": self.lr_drops["count"] + 1, "iter": it}
        self.log(f"{self._plateau()}: learning rates x{gamma:g} from iteration {it} (drop {self.lr_drops['count']} of {self.cfg.train.plateau_drops}, "
                 f"train.plateau_drops)")

    def _plateau(self) -> str:
        """What a plateau is, for the log (a learning-rate drop and the end of a run both say it)."""
        best = self.best
        if not best:  # only rank 0 validates; the other ranks agree on the plateau, log nothing
            return "validation has plateaued"
        return (f"validation {best['metric']} has not beaten its best ({best['value']:.4f} @ {best['iter']}) "
                f"for {self.cfg.train.patience} validations")

    def _finish(self, it: int, stopped_early: bool, spent: bool, stale: bool) -> dict:
        """Say how the run ended, and return what ``run_training`` reports."""
        cfg = self.cfg
        if stale:
            self.log(f"finished {cfg.name} at iteration {it}: {self._plateau()} (train.patience)")
        elif spent:
            self.log(f"finished {cfg.name} at iteration {it}: its CPU budget of "
                     f"{cfg.train.cpu_budget_min:g} min is used ({self.cpu_seconds() / 60:.1f} CPU-min)")
        elif stopped_early:
            used = f" ({self.cpu_seconds() / 60:.1f} CPU-min used)" if cfg.train.cpu_budget_min else ""
            why = f"{self.stop.name} asked it to stop" if self.stop.name else "the time limit was reached"
            self.log(f"stopped {cfg.name} at iteration {it} of {cfg.train.total_iter}: {why}{used}; "
                     f"continue with --resume")
        else:
            self.log(f"finished {cfg.name} at iteration {it}"
                     + (f"; {self.skipped} steps skipped" if self.skipped else ""))
        return {"iter": it, "stopped_early": stopped_early, "stop_signal": self.stop.signum, "budget_spent": spent, "plateaued": stale,
                "cpu_seconds": self.cpu_seconds(), "best": self.best, "skipped": self.skipped,
                "experiment": str(self.exp_dir),
                "history": self.timings.history, "data_time": self.timings.data, "step_time": self.timings.step,
                "iters": self.timings.iters}

    def close(self) -> None:
        logs.close_logs(self)
        D.teardown(self.dist)


def run_training(cfg: TrainConfig, resume: bool = False, device: str = "auto",
                 time_limit: float | None = None) -> dict:
    """Train ``cfg``; ``time_limit`` (seconds, counted from this call) stops the run early with a
    resumable state, for GPU leases and cluster jobs with a wall-clock limit."""
    deadline = None if time_limit is None else time.monotonic() + time_limit
    trainer = Trainer(cfg, resume=resume, device=device)
    try:
        return trainer.fit(deadline)
    finally:
        trainer.close()
