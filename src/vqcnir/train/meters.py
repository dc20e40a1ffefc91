"""What the training loop measures: time, CPU time (``train.cpu_budget_min``) and code usage."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..errors import VQCNIRError


@dataclass
class Timings:
    data: float = 0.0   # seconds waiting for batches
    step: float = 0.0   # seconds of whole iterations (data + compute)
    iters: int = 0
    history: list = field(default_factory=list)  # (iter, {loss: window mean}) at each log line


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
