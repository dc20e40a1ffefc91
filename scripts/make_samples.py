"""Make the committed demo images: samples/{night,gt}/*.png, samples/PROVENANCE.md and
docs/data_contact_sheet.jpg, with the synthesis pipeline, from public-domain / CC0 photos.

    python scripts/make_samples.py [--corpus PHOTO_DIR]

scikit-image's photos are always used; with --corpus (a `vqcnir data photos` folder) the CC0
Debian photo "seeding" is added. Re-running gives the same files.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from vqcnir.data import DegradeConfig, Degrader
from vqcnir.data.photos import SKIMAGE_PHOTOS, skimage_photo

ROOT = Path(__file__).resolve().parent.parent
MAX_SIDE = 320
# Frames here are ~400 px wide instead of LOL-Blur's 1120, so shake lengths are scaled down
# to keep the blur in proportion; everything else is the default (LOL-Blur-like) config.
CONFIG = {"blur": {"length": [4.0, 12.0]}}
# (source name, seed). Seeds picked once among 0..39 for a darker-than-average exposure
# (e <= 0.15) and a mix of noise kinds: a night demo, not a random draw.
PICKS = [
    ("skimage_astronaut", 15),
    ("skimage_coffee", 23),
    ("skimage_rocket", 21),
    ("skimage_chelsea", 30),
    ("lomiri_seeding", 24),
]


def shrink(img: np.ndarray) -> np.ndarray:
    im = Image.fromarray(img)
    scale = MAX_SIDE / max(im.size)
    if scale < 1:
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)
    return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0


def to8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, help="a `vqcnir data photos` folder (for 'seeding')")
    args = ap.parse_args()

    sources = {s.name: s for s in SKIMAGE_PHOTOS}
    manifest = {}
    if args.corpus:
        manifest = {Path(e["file"]).stem: e for e in
                    json.loads((args.corpus / "manifest.json").read_text())["photos"]}
    degrader = Degrader(DegradeConfig.from_dict(CONFIG))
    rows, provenance = [], []
    for name, seed in PICKS:
        if name in sources:
            src = sources[name]
            sharp = shrink(skimage_photo(src))
            origin = f"scikit-image `skimage.data.{src.path}()`"
            author, licence = src.author, src.licence
        elif name in manifest:
            e = manifest[name]
            sharp = shrink(np.asarray(Image.open(args.corpus / e["file"]).convert("RGB")))
            origin = f"Debian `{e['package']}`, `/{e['path']}`"
            author, licence = e["author"], e["licence"]
        else:
            print(f"skipping {name} (give --corpus)")
            continue
        short = name.split("_", 1)[1]
        sample = degrader(sharp, seed)
        for folder, img in (("night", sample.night), ("gt", sample.gt)):
            path = ROOT / "samples" / folder / f"{short}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(to8(img)).save(path, optimize=True)
        p = sample.params
        noise = p["noise"]
        noise_txt = (f"Gaussian σ = {noise['sigma'] * 255:.2f}/255" if noise["kind"] == "gaussian"
                     else f"Poisson, scale {noise['scale']:.3f}, {noise['levels']} levels")
        noise_txt += ", grey" if noise.get("grey") else ""
        blur = p["blur"]
        provenance.append(
            f"| `{short}.png` | {origin} | {author} | {licence} | {seed} | "
            f"{p['darken']['exposure']:.3f} (r = {p['darken']['curve_r']:.3f}) | "
            f"{blur['length']:.1f} px, kernel {blur['kernel_size']}², defocus σ "
            f"{blur['defocus_sigma']:.2f}, α {blur['highlight_alpha']:.2f} | {noise_txt} | "
            f"{p['gt']['scale']:.2f} |")
        rows.append((sharp, sample.night, short))

    write_provenance(provenance)
    contact_sheet(rows, ROOT / "docs" / "data_contact_sheet.jpg")


def write_provenance(rows: list[str]) -> None:
    text = f"""# Sample images: where they come from

`night/` holds night+blur images made by `vqcnir.data.Degrader` from the photos below;
`gt/` holds the matching ground truths (the sharp photo dimmed by the `gt` factor), same file
names. Made by `python scripts/make_samples.py --corpus PHOTO_DIR` (PHOTO_DIR from
`vqcnir data photos`): photos shrunk to at most {MAX_SIDE} px on the long side, then degraded
with the default configuration except `{json.dumps(CONFIG)}` (shake lengths scaled to the
small frames). All drawn parameters are listed; the seed alone reproduces them.

| file | source photo | author | licence | seed | exposure e | blur | noise | gt factor |
|---|---|---|---|---|---|---|---|---|
""" + "\n".join(rows) + """

Licences as stated by scikit-image's `skimage.data` docstrings and by the Debian package's
`debian/copyright` (lomiri-wallpapers). All sources are public domain or CC0, so these
derivatives can ship under any terms; credit to the photographers is kindly given above.
"""
    (ROOT / "samples" / "PROVENANCE.md").write_text(text, encoding="utf-8")


def contact_sheet(rows, path: Path) -> None:
    """sharp | synthesised night+blur | the night image brightened (for viewing only)."""
    cw, ch, gap, head = 240, 160, 6, 20
    sheet = Image.new("RGB", (3 * cw + 2 * gap, head + len(rows) * (ch + gap)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for j, label in enumerate(("sharp photo", "synthesised night + blur",
                               "the same, brightened for viewing")):
        draw.text((j * (cw + gap) + 4, 5), label, fill=(0, 0, 0))
    for i, (sharp, night, _name) in enumerate(rows):
        gain = 0.45 / max(float(night.mean()), 1e-3)
        for j, img in enumerate((sharp, night, np.clip(night * gain, 0, 1))):
            tile = Image.fromarray(to8(img))
            tile.thumbnail((cw, ch), Image.Resampling.LANCZOS)
            x = j * (cw + gap) + (cw - tile.width) // 2
            y = head + i * (ch + gap) + (ch - tile.height) // 2
            sheet.paste(tile, (x, y))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, quality=85, optimize=True)


if __name__ == "__main__":
    main()
