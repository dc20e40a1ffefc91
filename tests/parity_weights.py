"""Deterministic weights for the parity fixtures, rebuilt from the official state-dict manifest."""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import torch

FIXTURES = Path(__file__).parent / "fixtures"
MANIFEST = FIXTURES / "official_state_dict.tsv"


def official_manifest() -> list[tuple[str, tuple[int, ...]]]:
    rows = []
    for line in MANIFEST.read_text().splitlines()[1:]:
        key, shape, _dtype = line.split("\t")
        rows.append((key, tuple(int(s) for s in shape.strip("[]").split(",") if s.strip())))
    return rows


def fixture_value(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    u = torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1
    leaf = key.rsplit(".", 1)[-1]
    if leaf in ("beta", "gamma"):
        t = u
    elif leaf == "scale":
        t = 1 + 0.5 * u
    elif len(shape) >= 2:
        t = u / math.sqrt(math.prod(shape[1:]))
    elif key.endswith(".weight"):
        t = 1 + 0.1 * u
    else:
        t = 0.1 * u
    return t.to(torch.float32)


def fixture_state_dict() -> dict[str, torch.Tensor]:
    return {key: fixture_value(key, shape) for key, shape in official_manifest()}
