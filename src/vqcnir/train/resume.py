"""Saving a run and resuming it exactly: model exports (``models/``) and training states
(``training_states/<iter>.state``, every tensor and counter the loop needs)."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import torch

from ..imagefiles import atomic_path
from ..errors import VQCNIRError
from ..nn import VQCNIRConfig
from ..weights import save_checkpoint


def list_states(exp_dir: Path) -> list[tuple[int, Path]]:
    """Training states, newest first (only complete files: temporary ones start with a dot)."""
    folder = exp_dir / "training_states"
    out = []
    if folder.is_dir():
        for p in folder.glob("*.state"):
            if p.stem.isdigit():
                out.append((int(p.stem), p))
    return sorted(out, reverse=True)


def newest_state(exp_dir: Path) -> tuple[dict, Path, list[Path]]:
    """(the newest readable state, its path, the damaged newer ones skipped)."""
    broken = []
    for it, path in list_states(exp_dir):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(state, dict) or state.get("iter") != it or "net_g" not in state:
                raise ValueError("incomplete")
            return state, path, broken
        except Exception:  # a damaged file: fall back to the one before
            broken.append(path)
    raise VQCNIRError(f"nothing to resume in {exp_dir}: every training state is damaged")


def training_state(t, it: int) -> dict:
    """Everything trainer ``t`` needs to continue from iteration ``it`` (the keys are a file format)."""
    cpu = lambda sd: {k: v.detach().cpu().clone() for k, v in sd.items()}  # noqa: E731
    return {
        "iter": it,
        "net_g": cpu(t.net.state_dict()),
        "net_ema": cpu(t.ema.state_dict()) if t.ema is not None else None,
        "net_d": cpu(t.net_d.state_dict()) if t.net_d is not None else None,
        "opt_g": t.opt_g.state_dict(),
        "sched_g": t.sched_g.state_dict(),
        "opt_d": t.opt_d.state_dict() if t.opt_d is not None else None,
        "sched_d": t.sched_d.state_dict() if t.sched_d is not None else None,
        "code_counts": t.code_counts.cpu(),
        "restart_counts": t.restart_counts.cpu(),
        "best": t.best,
        "lr_drops": t.lr_drops,
        "skipped": t.skipped,
        "cpu_seconds": t.cpu_seconds(),
        "rng_torch": torch.get_rng_state(),
        "perceptual_net": t.perceptual_kind,
        "vqcnir_config": t.net_config.to_dict(),
    }


def load_training_state(t, state: dict) -> None:
    saved = state.get("vqcnir_config")
    # fields added to VQCNIRConfig later are absent from older states: they had the default
    if not isinstance(saved, dict) or {**VQCNIRConfig().to_dict(), **saved} != t.net_config.to_dict():
        raise VQCNIRError(f"{t.resumed_from}: was trained with another network config than this "
                          f"config describes ({state.get('vqcnir_config')})")
    t.net.load_state_dict(state["net_g"])
    if t.ema is not None:
        t.ema.load_state_dict(state["net_ema"] if state["net_ema"] is not None else state["net_g"])
    if t.net_d is not None and state["net_d"] is not None:
        t.net_d.load_state_dict(state["net_d"])
        t.opt_d.load_state_dict(state["opt_d"])
        t.sched_d.load_state_dict(state["sched_d"])
    t.opt_g.load_state_dict(state["opt_g"])
    t.sched_g.load_state_dict(state["sched_g"])
    t.lr_drops = state.get("lr_drops", {"count": 0, "iter": 0})  # absent from states saved before it existed
    t.schedule_note = follow_config_schedule(t, state["iter"])
    t.code_counts.copy_(state["code_counts"].to(t.code_counts))
    t.restart_counts.copy_(state["restart_counts"].to(t.restart_counts))
    t.best = state["best"]
    t.skipped = state["skipped"]
    t.cpu_before = float(state.get("cpu_seconds", 0.0))
    torch.set_rng_state(state["rng_torch"])
    t.start_iter = state["iter"]


def follow_config_schedule(t, it: int) -> str:
    """Make the learning rates at iteration ``it`` the ones this run's config asks for.

    A saved scheduler carries its own milestones and base rates, so without this a resumed run
    would silently ignore a changed ``train.optim_*.lr`` or ``train.scheduler``. With an
    unchanged config the rates are the saved ones, so an exact resume stays exact.
    Learning-rate drops taken on plateaus (``train.plateau_drops``) stay taken.
    Returns a log line when a rate changed, else "".
    """
    cfg = t.cfg.train
    changed = []
    for name, opt, sched, base in (("G", t.opt_g, t.sched_g, cfg.optim_g.lr),
                                   ("D", t.opt_d, t.sched_d, cfg.optim_d.lr)):
        if opt is None:
            continue
        sched.milestones = Counter(cfg.scheduler.milestones)
        sched.gamma = cfg.scheduler.gamma
        sched.base_lrs = [base] * len(opt.param_groups)
        lr = base * cfg.scheduler.gamma ** (sum(m <= it for m in cfg.scheduler.milestones) + t.lr_drops["count"])
        for group in opt.param_groups:
            if not math.isclose(group["lr"], lr, rel_tol=1e-9):
                changed.append(f"{name} {group['lr']:.3g} -> {lr:.3g}")
            group["lr"] = lr
        sched._last_lr = [lr] * len(opt.param_groups)
    if not changed:
        return ""
    return f"learning rate follows this config's schedule from iteration {it}: " + ", ".join(changed)


def export(t, path: Path, it: int) -> None:
    """A model file {'params', 'params_ema', 'iter', 'stage'} that `vqcnir restore` loads."""
    ema = t.ema.state_dict() if t.ema is not None else t.net.state_dict()
    ema = {k: v.detach().cpu().contiguous() for k, v in ema.items()}
    save_checkpoint(path, t.net.state_dict(), t.net_config,
                    extra={"params_ema": ema, "iter": it, "stage": t.cfg.stage})


def save_run(t, it: int) -> None:
    """Model exports first, the training state last: a state on disk means a complete save.
    Every file is written to a temporary name and renamed, so a kill never leaves a broken one."""
    models = t.exp_dir / "models"
    export(t, models / f"net_g_{it}.pth", it)
    export(t, models / "net_g_latest.pth", it)
    with atomic_path(t.exp_dir / "training_states" / f"{it}.state") as tmp:
        torch.save(training_state(t, it), tmp)
    for _, old in list_states(t.exp_dir)[t.cfg.logging.keep_states:]:
        old.unlink(missing_ok=True)
    t.log(f"saved iteration {it}: {models / f'net_g_{it}.pth'}")
