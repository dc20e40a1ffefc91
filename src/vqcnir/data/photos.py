"""`vqcnir data photos`: an offline corpus of sharp, real photographs to synthesise from.

Sources: Debian's photographic wallpaper packages (fetched with `apt-get download`, unpacked with
`dpkg -x`; only the files listed below, which are real photos rather than renders or patterns),
and the colour photos bundled with scikit-image. Every file goes into a manifest with its author
and licence; each Debian package's own copyright file is copied next to it. The photos keep their
own licences (CC-BY, CC-BY-SA, GPL, LGPL, CC0, public domain): fine for training, not for
committing to this repository.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import VQCNIRError
from ..imagefiles import write_image, write_text


@dataclass(frozen=True)
class PhotoSource:
    package: str      # Debian package, or "scikit-image"
    path: str         # path inside the package (or the skimage.data function name)
    author: str
    licence: str
    name: str         # file name in the corpus (without extension)


_LOM16 = "lomiri-wallpapers-16.04"
_LOM20 = "lomiri-wallpapers-20.04"
_PLASMA = "plasma-workspace-wallpapers"
_MATE = "mate-backgrounds"

# Chosen by looking at every image in these packages: photographs only (no renders, gradients
# or logos). Authors and licences as given by each package's debian/copyright (Plasma: by each
# wallpaper's metadata.json; the package-wide copyright says GPL-2+).
DEBIAN_PHOTOS: tuple[PhotoSource, ...] = tuple(
    PhotoSource(pkg, path, author, lic, name) for pkg, path, author, lic, name in [
        (_LOM16, "usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg", "Sander Klootwijk", "CC-BY-SA-4.0", "lomiri_bridge"),
        (_LOM16, "usr/share/backgrounds/Dragonfly_by_Bolly.jpg", "Bolly", "CC-BY-SA-4.0", "lomiri_dragonfly"),
        (_LOM16, "usr/share/backgrounds/Picture_0B_by_freespace.jpg", "Trevor (Freespace)", "CC-BY-4.0", "lomiri_fig"),
        (_LOM16, "usr/share/backgrounds/Picture_1A_by_freespace.jpg", "Trevor (Freespace)", "CC-BY-4.0", "lomiri_brushes"),
        (_LOM16, "usr/share/backgrounds/Wine_by_Jakkub_Mede.jpg", "Jakub Mede", "CC-BY-4.0", "lomiri_wine"),
        (_LOM16, "usr/share/backgrounds/aitzgorri_by_Aitzol_Berasategi.jpg", "Aitzol Berasategi", "CC-BY-4.0", "lomiri_aitzgorri"),
        (_LOM16, "usr/share/backgrounds/free_by_Peter_Nerlich.jpg", "Peter Nerlich", "CC-BY-SA-4.0", "lomiri_free"),
        (_LOM16, "usr/share/backgrounds/friends_by_Aitzol_Berasategi.jpg", "Aitzol Berasategi", "CC-BY-4.0", "lomiri_friends"),
        (_LOM16, "usr/share/backgrounds/greentock_by_Peter_Nerlich.jpg", "Peter Nerlich", "CC-BY-SA-4.0", "lomiri_greentock"),
        (_LOM16, "usr/share/backgrounds/life_by_Aitzol_Berasategi.jpg", "Aitzol Berasategi", "CC-BY-4.0", "lomiri_life"),
        (_LOM16, "usr/share/backgrounds/picosdeeuropa_by_Aitzol_Berasategi.jpg", "Aitzol Berasategi", "CC-BY-4.0", "lomiri_picosdeeuropa"),
        (_LOM16, "usr/share/backgrounds/seeding_by_Clements_Engelhardt.jpg", "Clemens Engelhardt", "CC0-1.0", "lomiri_seeding"),
        (_LOM16, "usr/share/backgrounds/sunset_by_Aitzol_Berasategi.jpg", "Aitzol Berasategi", "CC-BY-4.0", "lomiri_sunset"),
        (_LOM20, "usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg", "Lukas Baubkus", "CC-BY-SA-3.0", "lomiri_kleiber"),
        (_PLASMA, "usr/share/wallpapers/BytheWater/contents/images/2560x1600.jpg", "Maciej Wiklo", "LGPL-3.0", "plasma_bythewater"),
        (_PLASMA, "usr/share/wallpapers/ColdRipple/contents/images/2560x1600.jpg", "Risto Saukonpää", "LGPL-3.0", "plasma_coldripple"),
        (_PLASMA, "usr/share/wallpapers/ColorfulCups/contents/images/2560x1600.jpg", "Dmitri Popov", "LGPL-3.0", "plasma_colorfulcups"),
        (_PLASMA, "usr/share/wallpapers/DarkestHour/contents/images/2560x1600.jpg", "Risto Saukonpää", "LGPL-3.0", "plasma_darkesthour"),
        (_PLASMA, "usr/share/wallpapers/EveningGlow/contents/images/2560x1600.jpg", "Ian Hex", "LGPL-3.0", "plasma_eveningglow"),
        (_PLASMA, "usr/share/wallpapers/FallenLeaf/contents/images/2560x1600.jpg", "Martin Klapetek", "LGPL-3.0", "plasma_fallenleaf"),
        (_PLASMA, "usr/share/wallpapers/Grey/contents/images/2560x1600.jpg", "Sigi Sagi", "LGPL-3.0", "plasma_grey"),
        (_PLASMA, "usr/share/wallpapers/Kite/contents/images/2560x1600.jpg", "Risto Saukonpää", "LGPL-3.0", "plasma_kite"),
        (_PLASMA, "usr/share/wallpapers/OneStandsOut/contents/images/2560x1600.jpg", "Risto Saukonpää", "LGPL-3.0", "plasma_onestandsout"),
        (_PLASMA, "usr/share/wallpapers/Path/contents/images/2560x1600.jpg", "Risto Saukonpää", "LGPL-3.0", "plasma_path"),
        (_PLASMA, "usr/share/wallpapers/summer_1am/contents/images/2560x1600.jpg", "Risto Saukonpää", "LGPL-3.0", "plasma_summer_1am"),
        (_MATE, "usr/share/backgrounds/mate/nature/Aqua.jpg", "Charles Barbin", "GPL-2+", "mate_aqua"),
        (_MATE, "usr/share/backgrounds/mate/nature/Blinds.jpg", "Lennart Poettering", "GPL-2+", "mate_blinds"),
        (_MATE, "usr/share/backgrounds/mate/nature/Dune.jpg", "Marco Cogoni", "GPL-2+", "mate_dune"),
        (_MATE, "usr/share/backgrounds/mate/nature/FreshFlower.jpg", "Jens Ansorg", "GPL-2+", "mate_freshflower"),
        (_MATE, "usr/share/backgrounds/mate/nature/Garden.jpg", "Charles Barbin", "GPL-2+", "mate_garden"),
        (_MATE, "usr/share/backgrounds/mate/nature/GreenMeadow.jpg", "Timothy Schellhase", "GPL-2+", "mate_greenmeadow"),
        (_MATE, "usr/share/backgrounds/mate/nature/LadyBird.jpg", "Charles Barbin", "GPL-2+", "mate_ladybird"),
        (_MATE, "usr/share/backgrounds/mate/nature/RainDrops.jpg", "blackcombwhistler07", "GPL-2+", "mate_raindrops"),
        (_MATE, "usr/share/backgrounds/mate/nature/Storm.jpg", "Sergey Nazarov", "GPL-2+", "mate_storm"),
        (_MATE, "usr/share/backgrounds/mate/nature/TwoWings.jpg", "Charles Barbin", "GPL-2+", "mate_twowings"),
        (_MATE, "usr/share/backgrounds/mate/nature/Wood.jpg", "Jean-François Fortin Tam", "GPL-2+", "mate_wood"),
        (_MATE, "usr/share/backgrounds/mate/nature/YellowFlower.jpg", "Charles Barbin", "GPL-2+", "mate_yellowflower"),
    ]
)

# scikit-image's colour photographs, with the licence its docstrings state.
SKIMAGE_PHOTOS: tuple[PhotoSource, ...] = (
    PhotoSource("scikit-image", "astronaut", "NASA (Eileen Collins portrait)", "public domain", "skimage_astronaut"),
    PhotoSource("scikit-image", "chelsea", "Stefan van der Walt", "CC0-1.0", "skimage_chelsea"),
    PhotoSource("scikit-image", "coffee", "Rachel Michetti (Pikolo Espresso Bar)", "CC0-1.0", "skimage_coffee"),
    PhotoSource("scikit-image", "rocket", "SpaceX (DSCOVR launch)", "public domain", "skimage_rocket"),
    PhotoSource("scikit-image", "stereo_motorcycle:0", "Middlebury 2014 stereo (Scharstein et al.)",
                "not stated by scikit-image; see the Middlebury stereo pages", "skimage_motorcycle_left"),
    PhotoSource("scikit-image", "stereo_motorcycle:1", "Middlebury 2014 stereo (Scharstein et al.)",
                "not stated by scikit-image; see the Middlebury stereo pages", "skimage_motorcycle_right"),
)


def skimage_photo(source: PhotoSource) -> np.ndarray:
    """uint8 RGB array of one scikit-image photo (bundled in its wheel; no download)."""
    try:
        import skimage.data as skdata
    except ImportError:
        raise VQCNIRError("scikit-image is not installed: `pip install scikit-image`, "
                          "or leave out its photos") from None
    func, _, part = source.path.partition(":")
    img = getattr(skdata, func)()
    if part:
        img = img[int(part)]
    return np.asarray(img, dtype=np.uint8)


def _save(img: Image.Image, dest: Path, max_side: int) -> tuple[int, int]:
    img = img.convert("RGB")
    if max_side and max(img.size) > max_side:
        # Downscaling is fine for a sharp corpus (it only sharpens) and keeps synthesis fast.
        scale = max_side / max(img.size)
        img = img.resize((round(img.width * scale), round(img.height * scale)),
                         Image.Resampling.LANCZOS)
    write_image(dest, np.asarray(img))
    return img.size


def _run(cmd: list[str], cwd: Path) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise VQCNIRError(f"`{cmd[0]}` not found: the Debian photos need a Debian or Ubuntu "
                          "system (or use --no-debian)") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        hint = " (try `sudo apt-get update` first)" if cmd[0] == "apt-get" else ""
        raise VQCNIRError(f"`{' '.join(cmd)}` failed: {last}{hint}")


def _deb_version(deb: Path) -> str:
    proc = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True)
    return proc.stdout.strip()


def collect_photos(out_dir: str | Path, *, debian: bool = True, skimage: bool = True,
                   max_side: int = 1920, progress: bool = True) -> list[dict]:
    """Fill `out_dir` with sharp photos and `manifest.json`; files already there are kept."""
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / "manifest.json"
    manifest = {}
    if manifest_path.exists():
        manifest = {e["file"]: e for e in json.loads(manifest_path.read_text())["photos"]}

    def record(src: PhotoSource, file: str, size, extra: dict) -> None:
        manifest[file] = {"file": file, **asdict(src), "width": size[0], "height": size[1],
                          **extra}
        doc = {"about": "Sharp photos for `vqcnir synth`; each keeps its own licence.",
               "photos": sorted(manifest.values(), key=lambda e: e["file"])}
        write_text(manifest_path, json.dumps(doc, indent=1, ensure_ascii=False))

    if skimage:
        import skimage as _sk
        for src in SKIMAGE_PHOTOS:
            dest = out_dir / f"{src.name}.png"
            if not dest.exists():
                size = _save(Image.fromarray(skimage_photo(src)), dest, max_side)
                record(src, dest.name, size, {"source_version": f"scikit-image {_sk.__version__}"})

    if debian:
        wanted = [s for s in DEBIAN_PHOTOS if not (out_dir / f"{s.name}.png").exists()]
        packages = sorted({s.package for s in wanted})
        with tempfile.TemporaryDirectory(prefix="vqcnir-photos-") as tmp:
            tmp = Path(tmp)
            for pkg in tqdm(packages, desc="debian packages", disable=not progress):
                _run(["apt-get", "download", pkg], tmp)
                debs = sorted(tmp.glob(f"{pkg}_*.deb"))
                if not debs:
                    raise VQCNIRError(f"apt-get download {pkg} produced no .deb file")
                root = tmp / pkg
                _run(["dpkg", "-x", str(debs[0]), str(root)], tmp)
                version = _deb_version(debs[0])
                lic_dir = out_dir / "licenses"
                lic_dir.mkdir(exist_ok=True)
                copyright_file = root / "usr/share/doc" / pkg / "copyright"
                if copyright_file.exists():
                    shutil.copyfile(copyright_file, lic_dir / f"{pkg}.copyright")
                for src in (s for s in wanted if s.package == pkg):
                    path = root / src.path
                    if not path.exists():
                        raise VQCNIRError(f"{pkg} {version} has no {src.path}: the package "
                                          "changed; please report it")
                    dest = out_dir / f"{src.name}.png"
                    with Image.open(path) as im:
                        size = _save(im, dest, max_side)
                    record(src, dest.name, size, {
                        "source_version": f"{pkg} {version}",
                        "copyright_file": f"licenses/{pkg}.copyright"})
                debs[0].unlink()
                shutil.rmtree(root)
    if not manifest:
        raise VQCNIRError("no photos collected: enable at least one source")
    return sorted(manifest.values(), key=lambda e: e["file"])
