"""Score a folder of restored images (against ground truth when given) and record the protocol."""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from ..errors import VQCNIRError
from ..imagefiles import list_images, read_tensor, write_image, write_text
from . import registry
from .errors import MetricUnavailable
from .gt_mean import PROTOCOL as GT_MEAN_PROTOCOL
from .gt_mean import match_gt_mean

GT_MEAN_NEEDS_GT = "--gt-mean takes each image's brightness from its ground truth: give --gt DIR"

_PACKAGES = ("torch", "torchvision", "numpy", "pillow", "scikit-image", "lpips", "stlpips-pytorch", "pyiqa")


@dataclass
class Evaluation:
    metrics: list[str]                       # metrics computed, in the order asked
    rows: list[dict]                         # {"image": relative path, <metric>: float, ...}
    means: dict[str, float]                  # over the images where the metric is defined
    protocol: dict
    unavailable: dict[str, str] = field(default_factory=dict)
    undefined: dict[str, list[str]] = field(default_factory=dict)  # metric -> images scored NaN

    def defined_count(self, metric: str) -> int:
        return len(self.rows) - len(self.undefined.get(metric, []))


def _package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    try:
        out["vqcnir"] = metadata.version("vqcnir")
    except metadata.PackageNotFoundError:
        from .. import __version__

        out["vqcnir"] = __version__
    return out


def _listing(folder: Path, role: str) -> list[tuple[Path, Path]]:
    if not folder.is_dir():
        raise VQCNIRError(f"--{role} {folder}: not a folder")
    files = list_images([folder], recursive=True)
    if not files:
        raise VQCNIRError(f"--{role} {folder}: no images found")
    return files


def _examples(items: list[str]) -> str:
    shown = ", ".join(items[:3])
    return shown + (f" and {len(items) - 3} more" if len(items) > 3 else "")


def pair_folders(restored: Path, gt: Path | None) -> list[tuple[str, Path, Path | None]]:
    """(relative path, restored file, gt file) pairs, matched by relative path.

    The extension may differ (``a.png`` restored from ``a.jpg``) when that is unambiguous. Every
    restored image needs a ground truth and every ground truth a restored image.
    """
    rest = _listing(restored, "restored")
    if gt is None:
        return [(rel.as_posix(), f, None) for f, rel in rest]
    truth = _listing(gt, "gt")
    exact = {rel.as_posix(): f for f, rel in truth}
    by_stem: dict[str, list[str]] = {}
    for _, rel in truth:
        by_stem.setdefault(rel.with_suffix("").as_posix(), []).append(rel.as_posix())
    pairs, missing, used = [], [], set()
    for f, rel in rest:
        key = rel.as_posix()
        if key not in exact:
            candidates = by_stem.get(rel.with_suffix("").as_posix(), [])
            key = candidates[0] if len(candidates) == 1 else None
        if key is None or key in used:
            missing.append(rel.as_posix())
            continue
        used.add(key)
        pairs.append((rel.as_posix(), f, exact[key]))
    if missing:
        raise VQCNIRError(
            f"{len(missing)} restored image(s) have no ground truth with the same relative path "
            f"in {gt}: {_examples(missing)}"
        )
    extra = sorted(set(exact) - used)
    if extra:
        raise VQCNIRError(
            f"{len(extra)} ground-truth image(s) have no restored counterpart in {restored}: "
            f"{_examples(extra)} (evaluate whole test sets, or point --gt at the matching subset)"
        )
    return pairs


def resolve_metrics(names: list[str] | None, has_gt: bool) -> list[str]:
    if not names:
        names = list(registry.DEFAULT_FULL_REFERENCE if has_gt else registry.DEFAULT_NO_REFERENCE)
    out = []
    for name in names:
        if name not in registry.SPECS:
            raise VQCNIRError(f"unknown metric {name!r}; known: {', '.join(registry.SPECS)}")
        if registry.SPECS[name].reference and not has_gt:
            raise VQCNIRError(f"{name} compares with ground truth: give --gt DIR, or choose "
                              f"no-reference metrics ({', '.join(n for n, s in registry.SPECS.items() if not s.reference)})")
        if name not in out:
            out.append(name)
    return out


def _mean(values: list[float]) -> float:
    """Mean over the defined values (a NaN score means undefined and is left out)."""
    defined = [v for v in values if not math.isnan(v)]
    return float(np.mean(defined)) if defined else float("nan")


def undefined_reason(metric: str) -> str:
    return registry.SPECS[metric].protocol.get("undefined_when", "the metric is undefined for this image")


def build_scorers(names: list[str], device: str) -> tuple[dict[str, Callable], dict[str, str]]:
    """Scorers for the metrics that can run here, and the reason for each one that cannot."""
    unavailable: dict[str, str] = {}
    scorers: dict[str, Callable] = {}
    for name in names:
        try:
            registry.check(name)
            scorers[name] = registry.build(name, device)
        except MetricUnavailable as error:
            unavailable[name] = str(error)
    return scorers, unavailable


def evaluate_folders(restored: Path, gt: Path | None = None, metrics: list[str] | None = None, *,
                     crop: int = 0, device: str = "cpu", progress: bool = True,
                     source: dict | None = None, gt_mean: bool = False) -> Evaluation:
    """Score every image; metrics that cannot run here are listed in ``unavailable``.
    ``gt_mean`` scores each image after ``match_gt_mean`` (brightness taken from the ground truth)."""
    restored, gt = Path(restored), (Path(gt) if gt is not None else None)
    names = resolve_metrics(metrics, gt is not None)
    if crop < 0:
        raise VQCNIRError(f"--crop must be >= 0, got {crop}")
    if gt_mean and gt is None:
        raise VQCNIRError(GT_MEAN_NEEDS_GT)
    pairs = pair_folders(restored, gt)
    scorers, unavailable = build_scorers(names, device)
    rows = []
    for rel, r_path, g_path in tqdm(pairs, desc="evaluate", unit="img", disable=None if progress else True):
        r = read_tensor(r_path)
        g = read_tensor(g_path) if g_path is not None else None
        if g is not None and r.shape != g.shape:
            raise VQCNIRError(
                f"{rel}: restored is {r.shape[-1]}×{r.shape[-2]} but gt is {g.shape[-1]}×{g.shape[-2]} pixels"
            )
        if crop:
            if min(r.shape[-2:]) <= 2 * crop:
                raise VQCNIRError(f"{rel}: --crop {crop} leaves nothing of a {r.shape[-1]}×{r.shape[-2]} image")
            r = r[..., crop:-crop, crop:-crop]
            g = g[..., crop:-crop, crop:-crop] if g is not None else None
        if gt_mean:
            r = match_gt_mean(r, g)
        r = r.to(device)
        g = g.to(device) if g is not None else None
        row: dict = {"image": rel}
        for name, scorer in scorers.items():
            try:
                row[name] = float(scorer(r, g if registry.SPECS[name].reference else None)[0])
            except ValueError as error:
                raise VQCNIRError(f"{rel}: {name}: {error}") from None
        rows.append(row)
    computed = [n for n in names if n in scorers]
    means = {n: _mean([row[n] for row in rows]) for n in computed}
    undefined = {n: bad for n in computed if (bad := [row["image"] for row in rows if math.isnan(row[n])])}
    protocol = {
        "created_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "restored": str(restored),
        "gt": str(gt) if gt is not None else None,
        "pairing": "relative path (file extension may differ)" if gt is not None else None,
        "images": len(rows),
        "crop": crop,
        "gt_mean": GT_MEAN_PROTOCOL if gt_mean else False,
        "device": str(device),
        "source": source or {"kind": "folder"},
        "mean": "arithmetic mean over the images where the metric is defined (an undefined score is "
                "NaN, left out and listed under 'undefined'); inf if any image is inf",
        "packages": _package_versions(),
        "metrics": {
            n: {"reference": registry.SPECS[n].reference,
                "higher_is_better": registry.SPECS[n].higher_is_better,
                "pyiqa_equivalent": registry.SPECS[n].pyiqa,
                **registry.SPECS[n].protocol}
            for n in names
        },
        "unavailable": unavailable,
    }
    return Evaluation(computed, rows, means, protocol, unavailable, undefined)


def _plain(value: float) -> float | str:
    """JSON has no inf/nan: write them as the strings "inf", "-inf", "nan"."""
    return value if math.isfinite(value) else ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))


def _text(value: float) -> str:
    return repr(value) if math.isfinite(value) else str(_plain(value))


def to_json(ev: Evaluation) -> str:
    doc = {
        "protocol": ev.protocol,
        "mean": {n: _plain(v) for n, v in ev.means.items()},
        "undefined": {n: {"images": images, "reason": undefined_reason(n)} for n, images in ev.undefined.items()},
        "per_image": [{k: (_plain(v) if isinstance(v, float) else v) for k, v in row.items()} for row in ev.rows],
    }
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


def to_csv(ev: Evaluation) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["image", *ev.metrics])
    for row in ev.rows:
        w.writerow([row["image"], *(_text(row[n]) for n in ev.metrics)])
    return buf.getvalue()


def format_table(ev: Evaluation, per_image: bool = False) -> str:
    lines = []
    if per_image and ev.metrics:
        width = max([5, *(len(row["image"]) for row in ev.rows)])
        lines.append(f"{'image':<{width}}  " + "  ".join(f"{n:>12}" for n in ev.metrics))
        for row in ev.rows:
            lines.append(f"{row['image']:<{width}}  " + "  ".join(f"{_fmt(row[n]):>12}" for n in ev.metrics))
        lines.append("")
    lines.append(f"{'metric':<13} {'mean':>12}  {'better':<7} images")
    for n in ev.metrics:
        better = "higher" if registry.SPECS[n].higher_is_better else "lower"
        lines.append(f"{n:<13} {_fmt(ev.means[n]):>12}  {better:<7} {ev.defined_count(n)}")
    for n, reason in ev.unavailable.items():
        lines.append(f"{n:<13} {'unavailable':>12}  {reason}")
    for n, images in ev.undefined.items():
        lines.append(f"{n}: {len(images)} image(s) left out of the mean, undefined because "
                     f"{undefined_reason(n)}: {_examples(images)}")
    return "\n".join(lines)


def _fmt(v: float) -> str:
    return f"{v:.4f}" if math.isfinite(v) else str(_plain(v))


def refuse_existing(targets, overwrite: bool = False) -> None:
    """Raise when one of ``targets`` exists and replacing it was not asked for."""
    existing = [str(t) for t in targets if Path(t).exists()]
    if existing and not overwrite:
        raise VQCNIRError(f"{existing[0]} already exists; choose another --out or pass --overwrite")


def _write_atomic(files: dict[Path, str], overwrite: bool) -> None:
    refuse_existing(files, overwrite)
    for target, text in files.items():
        write_text(target, text)


def output_paths(out: Path) -> tuple[Path, Path]:
    """The files ``write_outputs`` writes into ``out``."""
    return Path(out) / "metrics.csv", Path(out) / "metrics.json"


def write_outputs(ev: Evaluation, out: Path, overwrite: bool = False) -> tuple[Path, Path]:
    """Write ``metrics.csv`` and ``metrics.json`` into ``out``; refuse to replace files unless told."""
    targets = output_paths(out)
    _write_atomic(dict(zip(targets, (to_csv(ev), to_json(ev)))), overwrite)
    return targets


# --- several methods side by side -------------------------------------------------------------

def comparison_paths(out: Path) -> tuple[Path, Path, Path]:
    """The files ``write_comparison`` writes into ``out``."""
    return tuple(Path(out) / f"comparison.{ext}" for ext in ("csv", "json", "md"))


def _cell(ev: Evaluation, metric: str) -> str:
    if metric not in ev.means:
        return "n/a"
    v = ev.means[metric]
    if not math.isfinite(v):
        return str(_plain(v))
    return f"{v:.2f}" if metric.startswith("psnr") else f"{v:.4f}"


def comparison_metrics(evaluations: list[Evaluation]) -> list[str]:
    """Metrics computed for any method, in the order asked."""
    out: list[str] = []
    for ev in evaluations:
        out += [n for n in ev.metrics if n not in out]
    return out


def format_comparison(rows: list[tuple[str, Evaluation]], metrics: list[str], markdown: bool) -> str:
    """One row per (title, evaluation): mean of every metric and the image count.

    ``markdown`` gives a GitHub table (for a model card), otherwise aligned plain text.
    """
    arrows = [f"{n} {'↑' if registry.SPECS[n].higher_is_better else '↓'}" for n in metrics]
    header = ["method", *arrows, "images"]
    body = [[title, *(_cell(ev, n) for n in metrics), str(len(ev.rows))] for title, ev in rows]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":---", *["---:"] * (len(header) - 1)]) + "|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body])
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = [[r[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(r[1:], widths[1:]))] for r in [header, *body]]
    return "\n".join("  ".join(line).rstrip() for line in lines)


def comparison_csv(rows: list[tuple[str, str, Evaluation]], metrics: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["method", "title", *metrics, "images"])
    for label, title, ev in rows:
        w.writerow([label, title, *(_text(ev.means[n]) if n in ev.means else "" for n in metrics), len(ev.rows)])
    return buf.getvalue()


def comparison_json(rows: list[tuple[str, str, Evaluation]], metrics: list[str], night: Path | None) -> str:
    first = rows[0][2].protocol
    protocol = {
        "created_utc": first["created_utc"],
        "night": str(night) if night is not None else None,
        "gt": first["gt"],
        "pairing": first["pairing"],
        "images": first["images"],
        "crop": first["crop"],
        "gt_mean": first["gt_mean"],
        "device": first["device"],
        "mean": first["mean"],
        "packages": first["packages"],
        "metrics": first["metrics"],
        "unavailable": {k: v for _, _, ev in rows for k, v in ev.unavailable.items()},
    }
    methods = {
        label: {"title": title, "source": ev.protocol["source"], "images": len(ev.rows),
                "mean": {n: _plain(v) for n, v in ev.means.items()}}
        for label, title, ev in rows
    }
    doc = {"protocol": protocol, "metrics": metrics, "methods": methods}
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


def write_comparison(rows: list[tuple[str, str, Evaluation]], out: Path, night: Path | None = None,
                     overwrite: bool = False) -> tuple[Path, Path, Path]:
    """Write ``comparison.csv/json/md`` for (label, title, evaluation) rows, in the order given."""
    metrics = comparison_metrics([ev for _, _, ev in rows])
    targets = comparison_paths(out)
    table = format_comparison([(title, ev) for _, title, ev in rows], metrics, markdown=True) + "\n"
    if rows[0][2].protocol["gt_mean"]:
        table += f"\nGT-mean: {GT_MEAN_PROTOCOL}.\n"
    texts = (comparison_csv(rows, metrics), comparison_json(rows, metrics, night), table)
    _write_atomic(dict(zip(targets, texts)), overwrite)
    return targets


def restore_targets(night: Path, out: Path) -> list[tuple[Path, Path]]:
    """(night file, output file) pairs for ``restore_folder``; raise if an output already exists."""
    files = _listing(Path(night), "night")
    targets = [(f, Path(out) / rel.with_suffix(".png")) for f, rel in files]
    clash = [str(t) for _, t in targets if t.exists()]
    if clash:
        raise VQCNIRError(f"{clash[0]} already exists; point --restored at a new or empty folder")
    return targets


def restore_folder(night: Path, out: Path, restorer: Callable[[torch.Tensor], torch.Tensor], *,
                   progress: bool = True, desc: str = "restore") -> int:
    """Run ``restorer`` (1×3×H×W float in [0,1] → same) on every image below ``night``.

    Results go to ``out`` under the same relative paths, as 8-bit PNG. Existing files are never
    replaced. Returns the number of images written.
    """
    targets = restore_targets(night, out)
    for f, target in tqdm(targets, desc=desc, unit="img", disable=None if progress else True):
        x = read_tensor(f)
        y = restorer(x)
        rgb = y[0].detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy().astype(np.float32)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_image(target, rgb)
    return len(targets)
