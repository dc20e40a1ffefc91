"""The training loop both VQCNIR stages share; what differs lives in ``stage1.py`` (the codebook
autoencoder, dead-code restarts) and ``stage2.py`` (the restorer: frozen parts, code alignment).

One process or many (``torchrun``, DDP); bf16 autocast on GPU; gradient clipping; EMA weights;
skipped (logged) steps on non-finite losses or gradients; atomic checkpoints; exact resume.

Layout of a run, ``<experiments_root>/<name>/``::

    config.yaml           the resolved config (loadable with -c)
    log.txt               what the progress bar and the log lines said
    models/               net_g_<iter>.pth, net_g_latest.pth, net_g_best.pth ({'params', 'params_ema'})
    training_states/      <iter>.state: everything needed to resume
    visualization/        val_<iter>.png: night | restored | gt, one row per image
    tb/                   TensorBoard event files
"""

from __future__ import annotations

import copy
import math
import sys
import time
import warnings
from contextlib import nullcontext

import torch
import yaml
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader

from ..engine import choose_device, effective_precision
from ..errors import VQCNIRError
from ..nn.discriminator import UNetDiscriminatorSN
from . import distributed as D
from .config import TrainConfig
from .data import EpochIndexed, GlobalBatchSampler, build_datasets
from .meters import Timings, codebook_stats, format_duration, process_tree_cpu_seconds
from .losses import PerceptualLoss, frequency_loss, hinge_d_loss, hinge_g_loss, pixel_loss, resolve_perceptual
from .resume import export, list_states, load_training_state, newest_state, save_run
from .stage1 import Stage1
from .stage2 import Stage2
from .validation import validate


class _Generator(nn.Module):
    """Puts ``forward_train`` behind ``forward`` so DDP can wrap it."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x, gt_indices=None):
        if gt_indices is None:
            return self.net.forward_train(x)
        return self.net.forward_train(x, gt_indices)


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
        self.start_iter = 0
        self.cpu_before = 0.0  # CPU-seconds this run used before this process (resumes)
        self.cpu_start = None  # the process tree's CPU-seconds when fit() began
        self.schedule_note = ""
        precision = cfg.train.precision
        if precision == "auto":
            precision = "bf16" if self.device.type == "cuda" else "fp32"
        precision, self.precision_note = effective_precision(precision, self.device)
        if self.precision_note:
            self.precision_note = f"train.precision={cfg.train.precision}: {self.precision_note}"
        self.precision = precision
        self.autocast_dtype = torch.bfloat16 if precision == "bf16" else None

        state = self._prepare_dir(resume)
        torch.manual_seed(cfg.seed)
        self._build_networks()
        self._build_losses()
        self._build_optimizers()
        if state is not None:
            load_training_state(self, state)
        self._build_data()
        self._open_logs()

    # ------------------------------------------------------------------------------ setup
    def _prepare_dir(self, resume: bool):
        exp = self.exp_dir
        self.fresh_note = ""
        self.broken_states = []
        if resume and list_states(exp):
            state, self.resumed_from, self.broken_states = newest_state(exp)
            return state
        if resume:  # nothing saved yet, e.g. a run killed before its first save: start it
            if any((exp / "models").glob("[!.]*")):
                raise VQCNIRError(f"nothing to resume in {exp}: it has saved models but no training state; "
                                  f"move it away, or choose another name (--opt name=...)")
            self.fresh_note = f"nothing to resume in {exp} (no training state was saved): starting at iteration 0"
        elif exp.exists() and any(exp.iterdir()):
            raise VQCNIRError(f"{exp} already exists: pass --resume to continue it, or choose "
                              f"another name (--opt name=...)")
        D.barrier(self.dist)
        if self.dist.is_main:
            for sub in ("models", "training_states", "visualization"):
                (exp / sub).mkdir(parents=True, exist_ok=True)
        D.barrier(self.dist)
        return None

    def _build_networks(self) -> None:
        cfg, dev = self.cfg, self.device
        self.net_config = self.stage.network_config()
        self.net = self.stage.build_network(self.net_config, dev)
        self.net.to(dev).train()
        self.ema = None
        if cfg.train.ema_decay > 0:
            self.ema = copy.deepcopy(self.net).requires_grad_(False).eval()
        self.use_gan = cfg.train.losses.adversarial > 0
        self.net_d = None
        if self.use_gan:
            self.net_d = UNetDiscriminatorSN(self.net_config.in_channels, cfg.train.disc_width).to(dev).train()
        gen = _Generator(self.net)
        if self.dist.enabled:
            ids = [dev.index] if dev.type == "cuda" else None
            self.g_step = DDP(gen, device_ids=ids)
            self.d_step = DDP(self.net_d, device_ids=ids) if self.net_d is not None else None
        else:
            self.g_step, self.d_step = gen, self.net_d

    def _build_losses(self) -> None:
        w = self.cfg.train.losses
        self.perceptual_kind = resolve_perceptual(w.perceptual_net) if w.perceptual > 0 else "none"
        self.perceptual = PerceptualLoss(self.perceptual_kind).to(self.device) if self.perceptual_kind != "none" else None

    def _build_optimizers(self) -> None:
        t = self.cfg.train
        params = [p for p in self.net.parameters() if p.requires_grad]
        self.opt_g = torch.optim.Adam(params, lr=t.optim_g.lr, betas=tuple(t.optim_g.betas),
                                      weight_decay=t.optim_g.weight_decay)
        self.sched_g = torch.optim.lr_scheduler.MultiStepLR(self.opt_g, t.scheduler.milestones, t.scheduler.gamma)
        self.opt_d = self.sched_d = None
        if self.net_d is not None:
            self.opt_d = torch.optim.Adam(self.net_d.parameters(), lr=t.optim_d.lr, betas=tuple(t.optim_d.betas),
                                          weight_decay=t.optim_d.weight_decay)
            self.sched_d = torch.optim.lr_scheduler.MultiStepLR(self.opt_d, t.scheduler.milestones, t.scheduler.gamma)
        k = self.net_config.codebook_size
        # code usage since the last log line, and since the last dead-code restart
        self.code_counts = torch.zeros(k, dtype=torch.float64, device=self.device)
        self.restart_counts = torch.zeros(k, dtype=torch.float64, device=self.device)

    def _build_data(self) -> None:
        cfg = self.cfg
        train, self.val_set = build_datasets(cfg)
        self.train_set = train
        sampler = GlobalBatchSampler(len(train), cfg.data.batch_size, self.dist.rank, self.dist.world,
                                     cfg.seed, self.start_iter)
        workers = cfg.data.num_workers
        self.loader = DataLoader(EpochIndexed(train), batch_sampler=sampler, num_workers=workers,
                                 pin_memory=self.device.type == "cuda", persistent_workers=workers > 0,
                                 prefetch_factor=4 if workers > 0 else None)

    def _open_logs(self) -> None:
        self.tb = None
        self.log_file = None
        if not self.dist.is_main:
            return
        self.log_file = open(self.exp_dir / "log.txt", "a", encoding="utf-8")
        resolved = self.cfg.to_dict()
        resolved["train"]["losses"]["perceptual_net"] = self.perceptual_kind
        if self.start_iter == 0:
            (self.exp_dir / "config.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False), encoding="utf-8")
        if self.cfg.logging.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(self.exp_dir / "tb"), purge_step=self.start_iter or None)
            except ImportError:
                self.log("tensorboard is not installed (pip install tensorboard): logging to log.txt only")
        n_train = sum(p.numel() for p in self.net.parameters() if p.requires_grad)
        n_all = sum(p.numel() for p in self.net.parameters())
        what = "resumed" if self.start_iter else "started"
        self.log(f"{what} {self.cfg.name}: stage {self.cfg.stage}, {n_train:,} of {n_all:,} parameters trained, "
                 f"{self.dist.world} process(es) on {self.device.type}, {self.precision}, global batch "
                 f"{self.cfg.data.batch_size} x {self.cfg.data.crop}², perceptual loss: {self.perceptual_kind}, "
                 f"{len(self.train_set)} training / {len(self.val_set)} validation items")
        for note in (self.fresh_note, self.precision_note):
            if note:
                self.log(note)
        if not self.start_iter:
            for note in self.stage.notes:
                self.log(note)
        else:
            self.log(f"resumed from {self.resumed_from} at iteration {self.start_iter}")
            for p in self.broken_states:
                self.log(f"skipped damaged training state {p}")
            if self.schedule_note:
                self.log(self.schedule_note)

    def log(self, line: str) -> None:
        if not self.dist.is_main:
            return
        from tqdm import tqdm

        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        if self.log_file is not None:
            self.log_file.write(f"{stamp} {line}\n")
            self.log_file.flush()
        tqdm.write(line, file=sys.stderr)

    # ------------------------------------------------------------------------------ state
    def save(self, it: int) -> None:
        if self.dist.is_main:
            save_run(self, it)

    # ------------------------------------------------------------------------------ training
    def autocast(self):
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _ema_update(self) -> None:
        if self.ema is None:
            return
        d = self.cfg.train.ema_decay
        with torch.no_grad():
            for e, p in zip(self.ema.parameters(), self.net.parameters()):
                if p.requires_grad:
                    e.lerp_(p.detach(), 1.0 - d)
            for e, b in zip(self.ema.buffers(), self.net.buffers()):
                e.copy_(b)

    def _finite_everywhere(self, *values: torch.Tensor) -> bool:
        bad = torch.zeros(1, device=self.device)
        for v in values:
            if not torch.isfinite(v).all():
                bad += 1
        return bool(D.all_reduce_sum(bad, self.dist).item() == 0)

    def _clip(self, params) -> torch.Tensor:
        clip = self.cfg.train.grad_clip
        return torch.nn.utils.clip_grad_norm_(params, clip if clip is not None else float("inf"))

    def train_step(self, batch: dict, it: int) -> dict[str, float]:
        w = self.cfg.train.losses
        gt = batch["gt"].to(self.device, non_blocking=True)
        x = self.stage.inputs(batch, gt, lambda v: v.to(self.device, non_blocking=True))
        gan_on = self.use_gan and it >= w.gan_start_iter
        logs: dict[str, torch.Tensor] = {}
        # ---- generator
        with self.autocast():
            out, l_code, indices = self.stage.generate(self.g_step, x, gt)
            out = out.float()
            total = out.new_zeros(())
            if w.pixel:
                logs["l_pix"] = w.pixel * pixel_loss(out, gt, w.pixel_kind)
            if w.frequency:
                logs["l_fft"] = w.frequency * frequency_loss(out, gt)
            if w.codebook:
                logs["l_code"] = w.codebook * l_code.float()
            if self.perceptual is not None:
                logs["l_per"] = w.perceptual * self.perceptual(out, gt)
            if gan_on:
                self.net_d.requires_grad_(False)
                logs["l_g_adv"] = w.adversarial * hinge_g_loss(self.net_d(out))
            for v in logs.values():
                total = total + v
        total.backward()
        g_params = [p for p in self.net.parameters() if p.requires_grad]
        norm = self._clip(g_params)
        ok = self._finite_everywhere(total, norm)
        if ok:
            self.opt_g.step()
            self._ema_update()
        else:
            self.skipped += 1
            self.log(f"iteration {it + 1}: non-finite generator loss or gradient "
                     f"({', '.join(f'{k}={v.item():.4g}' for k, v in logs.items())}); step skipped")
        self.opt_g.zero_grad(set_to_none=True)
        used = torch.bincount(indices.flatten(), minlength=self.code_counts.numel()).to(self.code_counts)
        self.code_counts += used
        self.stage.count_codes(self, used)
        # ---- discriminator: real and (detached) fake in one pass
        if gan_on:
            self.net_d.requires_grad_(True)
            with self.autocast():
                logits = self.d_step(torch.cat([gt, out.detach().to(gt.dtype)])).float()
                l_d = hinge_d_loss(logits[: gt.shape[0]], logits[gt.shape[0]:])
            l_d.backward()
            d_norm = self._clip(list(self.net_d.parameters()))
            if self._finite_everywhere(l_d, d_norm):
                self.opt_d.step()
            else:
                self.skipped += 1
                self.log(f"iteration {it + 1}: non-finite discriminator loss or gradient; step skipped")
            self.opt_d.zero_grad(set_to_none=True)
            logs["l_d"] = l_d.detach()
        with warnings.catch_warnings():  # after a skipped step torch warns the order looks wrong
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
            self.sched_g.step()
            if self.sched_d is not None:
                self.sched_d.step()
        logs["total"] = total.detach()
        return {k: float(v.detach()) for k, v in logs.items()}

    # ------------------------------------------------------------------------------ validation
    def _after_validation(self, it: int, result: dict[str, float]) -> None:
        from ..metrics import SPECS

        name = self.cfg.val.best_metric
        value = result.get(name)
        text = "  ".join(f"{k} {v:.4f}" for k, v in result.items())
        if self.cfg.train.cpu_budget_min is not None:
            text += f"  (cpu {self.cpu_seconds() / 60:.1f} min)"
        better = value is not None and math.isfinite(value) and (
            not self.best or (value > self.best["value"] if SPECS[name].higher_is_better else value < self.best["value"]))
        if better:
            self.best = {"metric": name, "value": value, "iter": it}
            export(self, self.exp_dir / "models" / "net_g_best.pth", it)
        best = f"  (best {self.best['metric']} {self.best['value']:.4f} @ {self.best['iter']})" if self.best else ""
        self.log(f"validation @ {it}: {text}{best}")
        if self.tb is not None:
            for k, v in result.items():
                self.tb.add_scalar(f"val/{k}", v, it)

    # ------------------------------------------------------------------------------ loop
    def cpu_seconds(self) -> float:
        """CPU-seconds this run has used so far, over all its resumes (train.cpu_budget_min)."""
        if self.cpu_start is None:
            return self.cpu_before
        return self.cpu_before + process_tree_cpu_seconds() - self.cpu_start

    def _over_budget(self) -> bool:
        budget = self.cfg.train.cpu_budget_min
        return budget is not None and self.cpu_seconds() >= budget * 60

    def _out_of_time(self, deadline: float | None) -> bool:
        """Whether the time limit has passed; every process gets rank 0's answer, so all stop together."""
        if deadline is None:
            return False
        late = time.monotonic() >= deadline
        if not self.dist.enabled:  # no tensor, no device sync per iteration
            return late
        return bool(D.broadcast(torch.tensor([float(late)], device=self.device), self.dist).item())

    def fit(self, deadline: float | None = None) -> dict:
        """Train to ``train.total_iter``; with ``deadline`` (a ``time.monotonic()`` value), stop at
        the first iteration past it, save a resumable state there and return early."""
        from tqdm import tqdm

        cfg, lg = self.cfg, self.cfg.logging
        total_iter = cfg.train.total_iter
        bar = tqdm(total=total_iter, initial=self.start_iter, unit="it", dynamic_ncols=True,
                   disable=None if self.dist.is_main and lg.progress_bar else True, file=sys.stderr)
        window: dict[str, float] = {}
        window_n = 0
        data_window = step_window = 0.0
        if cfg.train.cpu_budget_min is not None:
            self.cpu_start = process_tree_cpu_seconds()
        loader = iter(self.loader)
        it = self.start_iter
        stopped_early = False
        budget_spent = False
        try:
            while it < total_iter:
                t0 = time.perf_counter()
                batch = next(loader)
                t1 = time.perf_counter()
                logs = self.train_step(batch, it)
                it += 1
                self.stage.after_iteration(self, it, batch)
                t2 = time.perf_counter()
                self.timings.data += t1 - t0
                self.timings.step += t2 - t0
                self.timings.iters += 1
                data_window += t1 - t0
                step_window += t2 - t0
                for k, v in logs.items():
                    window[k] = window.get(k, 0.0) + v
                window_n += 1
                bar.update(1)
                if it % 10 == 0 or it == total_iter:
                    bar.set_postfix_str(" ".join(f"{k} {v:.3g}" for k, v in logs.items() if k != "total"))
                if it % lg.print_every == 0 or it == total_iter:
                    self._log_window(it, window, window_n, data_window, step_window)
                    window, window_n, data_window, step_window = {}, 0, 0.0, 0.0
                if it % cfg.val.every == 0 or it == total_iter:
                    if self.dist.is_main:
                        self._after_validation(it, validate(self, it))
                    D.barrier(self.dist)
                budget_spent = it < total_iter and self._budget_decision()
                saved = it % lg.save_every == 0 or it == total_iter or budget_spent
                if saved:
                    self.save(it)
                    D.barrier(self.dist)
                if budget_spent:
                    break
                if it < total_iter and self._out_of_time(deadline):
                    stopped_early = True
                    if not saved:
                        self.save(it)
                        D.barrier(self.dist)
                    break
        finally:
            bar.close()
        if budget_spent:
            self.log(f"finished {cfg.name} at iteration {it}: its CPU budget of "
                     f"{cfg.train.cpu_budget_min:g} min is used ({self.cpu_seconds() / 60:.1f} CPU-min)")
        elif stopped_early:
            self.log(f"stopped {cfg.name} at iteration {it} of {total_iter}: the time limit was reached; "
                     f"continue with --resume")
        else:
            self.log(f"finished {cfg.name} at iteration {it}"
                     + (f"; {self.skipped} steps skipped" if self.skipped else ""))
        return {"iter": it, "stopped_early": stopped_early, "budget_spent": budget_spent,
                "cpu_seconds": self.cpu_seconds(), "best": self.best, "skipped": self.skipped,
                "experiment": str(self.exp_dir),
                "history": self.timings.history, "data_time": self.timings.data, "step_time": self.timings.step,
                "iters": self.timings.iters}

    def _budget_decision(self) -> bool:
        """Rank 0's CPU-budget check (about 1 ms of /proc reads an iteration), shared by all."""
        if self.cfg.train.cpu_budget_min is None:
            return False
        over = self._over_budget()
        if not self.dist.enabled:
            return over
        return bool(D.broadcast(torch.tensor([float(over)], device=self.device), self.dist).item())

    def _log_window(self, it, window, n, data_time, step_time) -> None:
        keys = sorted(window)
        values = torch.tensor([window[k] / n for k in keys] + [data_time, step_time], dtype=torch.float64)
        values = D.all_reduce_sum(values.to(self.device), self.dist).cpu() / self.dist.world
        counts = D.all_reduce_sum(self.code_counts.clone(), self.dist)
        self.code_counts.zero_()
        if not self.dist.is_main:
            return
        means = dict(zip(keys, values[:-2].tolist()))
        data_time, step_time = values[-2].item(), values[-1].item()
        self.timings.history.append((it, means))
        speed = n / step_time if step_time > 0 else float("nan")
        eta = (self.cfg.train.total_iter - it) / speed if speed > 0 else float("nan")
        used, perplexity = codebook_stats(counts)
        lr = self.opt_g.param_groups[0]["lr"]
        losses = " ".join(f"{k} {v:.4f}" for k, v in means.items() if k != "total")
        self.log(f"iter {it:,}/{self.cfg.train.total_iter:,}  lr {lr:.2e}  {losses}  | codes {used}/"
                 f"{counts.numel()} used, perplexity {perplexity:.1f}  | {speed:.2f} it/s, data "
                 f"{100 * data_time / max(step_time, 1e-12):.1f}%  eta {format_duration(eta)}")
        if self.tb is not None:
            for k, v in means.items():
                self.tb.add_scalar(f"train/{k}", v, it)
            self.tb.add_scalar("train/lr", lr, it)
            self.tb.add_scalar("codebook/used", used, it)
            self.tb.add_scalar("codebook/perplexity", perplexity, it)
            self.tb.add_scalar("speed/it_per_s", speed, it)
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
            self.tb = None
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None
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
