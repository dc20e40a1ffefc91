"""Side-by-side pictures: one row per photo, columns night | restored | ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .imagefiles import read_image, to_uint, write_image

ROW_HEIGHT = 240
GAP = 6
LABEL_HEIGHT = 22


def _fit_height(rgb: np.ndarray, height: int) -> np.ndarray:
    from PIL import Image

    h, w = rgb.shape[:2]
    width = max(1, round(w * height / h))
    img = Image.fromarray(to_uint(rgb, 8))
    return np.asarray(img.resize((width, height), Image.Resampling.LANCZOS), dtype=np.float32) / 255


def _label(text: str, width: int) -> np.ndarray:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, LABEL_HEIGHT), (255, 255, 255))
    ImageDraw.Draw(img).text((4, 4), text, fill=(0, 0, 0))
    return np.asarray(img, dtype=np.float32) / 255


def side_by_side(rows: list[list[tuple[str, np.ndarray]]], height: int = ROW_HEIGHT) -> np.ndarray:
    """Lay out ``rows`` of (label, RGB float image) as one white-separated RGB picture."""
    rendered = []
    for row in rows:
        cells = []
        for label, rgb in row:
            pic = _fit_height(rgb, height)
            cells.append(np.concatenate([_label(label, pic.shape[1]), pic]))
            cells.append(np.ones((height + LABEL_HEIGHT, GAP, 3), np.float32))
        rendered.append(np.concatenate(cells[:-1], axis=1))
    width = max(r.shape[1] for r in rendered)
    padded = []
    for r in rendered:
        padded.append(np.pad(r, ((0, GAP), (0, width - r.shape[1]), (0, 0)), constant_values=1.0))
    return np.concatenate(padded)[:-GAP]


def _rgb(path: Path, max_megapixels: float | None) -> np.ndarray:
    return read_image(path, max_megapixels=max_megapixels).rgb


def _matching(folder: Path, rel: Path) -> Path | None:
    """The file in ``folder`` with the same relative path, allowing another extension."""
    exact = folder / rel
    if exact.is_file():
        return exact
    found = sorted(p for p in (folder / rel.parent).glob(rel.stem + ".*") if p.is_file())
    return found[0] if found else None


def write_side_by_side(pairs: list[tuple[Path, Path, Path]], dst: Path, gt_dir: Path | None = None,
                       max_megapixels: float | None = None) -> int:
    """Write night | restored (| ground truth) rows for (night file, restored file, relative path).

    Returns the number of rows. Ground truth is looked up in ``gt_dir`` by relative path; images
    are read with ``read_image``'s pixel limit ``max_megapixels``.
    """
    rows = []
    for night, restored, rel in pairs:
        row = [(f"night: {rel.as_posix()}", _rgb(night, max_megapixels)),
               ("restored", _rgb(restored, max_megapixels))]
        gt = _matching(gt_dir, rel) if gt_dir is not None else None
        if gt is not None:
            row.append(("ground truth", _rgb(gt, max_megapixels)))
        rows.append(row)
    write_image(dst, side_by_side(rows), bit_depth=8)
    return len(rows)
