"""What the training loop measures: time, CPU time (``train.cpu_budget_min``) and code usage."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from ..errors import VQCNIRError
from . import distributed as D


@dataclass
class Timings:
    data: float = 0.0   # seconds waiting for batches
    step: float = 0.0   # seconds of whole iterations (data + compute)
    iters: int = 0
    history: list = field(default_factory=list)  # (iter, {loss: window mean}) at each log line

    def add(self, data: float, step: float) -> None:
        self.data += data
        self.step += step
        self.iters += 1


@dataclass
class Window:
    """Loss sums and times of the iterations since the last log line."""
    sums: dict = field(default_factory=dict)
    n: int = 0
    data: float = 0.0
    step: float = 0.0

    def add(self, losses: dict[str, float], data: float, step: float) -> None:
        for k, v in losses.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.n += 1
        self.data += data
        self.step += step


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return (f"{days}d " if days else "") + f"{h:d}:{m:02d}:{s:02d}"


def codebook_stats(counts: torch.Tensor) -> tuple[int, float]:
    """(codes used, perplexity of their use) from usage counts."""
    used = int((counts > 0).sum())
    total = counts.sum()
    if total == 0:
        return 0, 0.0
    p = counts / total
    perplexity = float(torch.exp(-(p[p > 0] * p[p > 0].log()).sum()))
    return used, perplexity


def process_tree_cpu_seconds() -> float:
    """User + system CPU-seconds of this process, its finished children and its live ones (the
    data-loader workers)."""
    try:
        import psutil
    except ImportError:
        raise VQCNIRError("train.cpu_budget_min needs psutil: pip install psutil") from None
    me = psutil.Process()
    t = me.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:  # a worker that just exited is counted in children_* next time
            pass
    return total


def _everyone_agrees(t, answer: bool) -> bool:
    """Rank 0's ``answer``, on every process, so that all of them stop together."""
    if not t.dist.enabled:  # no tensor, no device sync per iteration
        return answer
    return bool(D.broadcast(torch.tensor([float(answer)], device=t.device), t.dist).item())


def budget_spent(t) -> bool:
    """Whether trainer ``t`` has used its ``train.cpu_budget_min`` (about 1 ms of /proc reads)."""
    budget = t.cfg.train.cpu_budget_min
    if budget is None:
        return False
    return _everyone_agrees(t, t.cpu_seconds() >= budget * 60)


def plateaued(t, it: int) -> bool:
    """Whether ``train.patience`` validations in a row, up to iteration ``it``, have not beaten
    the best one, counted from the last learning-rate drop if that came later (only rank 0
    validates; every rank gets its answer)."""
    patience = t.cfg.train.patience
    if patience is None:
        return False
    since = max(t.best["iter"], t.lr_drops["iter"]) if t.best else 0
    return _everyone_agrees(t, bool(t.best) and it - since >= patience * t.cfg.val.every)


def time_to_stop(t, deadline: float | None) -> bool:
    """Whether the ``time.monotonic()`` deadline has passed or a stop signal has come (``t.stop``)."""
    answer = t.stop.name is not None or (deadline is not None and time.monotonic() >= deadline)
    return _everyone_agrees(t, answer)
