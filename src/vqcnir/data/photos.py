"""`vqcnir data photos`: an offline corpus of sharp, real photographs to synthesise from.

Sources: Debian's photographic wallpaper packages (fetched with `apt-get download`; only the files
listed below, which are real photos rather than renders or patterns, are read out of the package
with `dpkg-deb --fsys-tarfile`), and the colour photos bundled with scikit-image. Every file goes
into a manifest with its author and licence; each Debian package's own copyright file is copied
next to it. The photos keep their own licences (CC-BY, CC-BY-SA, GPL, LGPL, BSD, FDL, CC0, public
domain): fine for training, not for committing to this repository.

`DEBIAN_PHOTOS` is the default set (the corpus the project's records were made with);
`MORE_DEBIAN_PHOTOS` (`--more`) adds photos from four more packages, among them Enlightenment's
backgrounds, which sit inside Eet archives (`eet.py`).
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import VQCNIRError
from ..imagefiles import write_image, write_text
from .eet import read_eet_entry


@dataclass(frozen=True)
class PhotoSource:
    package: str      # Debian package, or "scikit-image"
    path: str         # path inside the package (or the skimage.data function name); an entry
                      # inside an Eet archive of the package is "<archive path>:<entry name>"
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

_LXQT = "lxqt-themes"
_LXQT_DIR = "usr/share/lxqt/wallpapers"
_LXQT_LICENCE = "CC-BY-SA-3.0 (wallpapers/License); LGPL-2.1+ (debian/copyright)"
_PALAPELI = "palapeli-data"
_PALAPELI_DIR = "usr/share/palapeli/collection"
_E = "enlightenment-data"
_E_DIR = "usr/share/enlightenment/data/backgrounds"
_E_AUTHOR = "Carsten Haitzler and various contributors"  # debian/copyright "Files: *"; no per-image credit

# `--more`: photos found in four more packages of Debian 12 (bookworm) main, again photographs only.
# lxqt-themes: debian/copyright's "Files: *" (LGPL-2.1+) covers the wallpapers, while the package's
# own wallpapers/License says CC-BY-SA-3.0 and credits stefonarch (Stef Binde, in the EXIF) for eight
# of them; both are recorded. palapeli-data: author and licence from the .desktop file next to each
# puzzle (debian/copyright only has GPL-2+ for everything). Enlightenment: each background is an Eet
# archive whose entry edje/images/0 is the full-size JPEG (3840x2160).
MORE_DEBIAN_PHOTOS: tuple[PhotoSource, ...] = tuple(
    PhotoSource(pkg, path, author, lic, name) for pkg, path, author, lic, name in [
        (_LXQT, f"{_LXQT_DIR}/Butterfly-Kenneth-Wimer.jpg", "Kenneth Wimer", _LXQT_LICENCE, "lxqt_butterfly_kenneth_wimer"),
        (_LXQT, f"{_LXQT_DIR}/Valendas.png", "LXQt Project Team (photographer not named)", _LXQT_LICENCE, "lxqt_valendas"),
        (_LXQT, f"{_LXQT_DIR}/after-the-rain.jpg", "Stef Binde (stefonarch)", _LXQT_LICENCE, "lxqt_after_the_rain"),
        (_LXQT, f"{_LXQT_DIR}/appleflower.png", "Stef Binde (stefonarch)", _LXQT_LICENCE, "lxqt_appleflower"),
        (_LXQT, f"{_LXQT_DIR}/beam.png", "Stef Binde (stefonarch)", _LXQT_LICENCE, "lxqt_beam"),
        (_LXQT, f"{_LXQT_DIR}/butterfly.png", "Stef Binde (stefonarch)", _LXQT_LICENCE, "lxqt_butterfly"),
        (_LXQT, f"{_LXQT_DIR}/cloud.png", "LXQt Project Team (photographer not named)", _LXQT_LICENCE, "lxqt_cloud"),
        (_LXQT, f"{_LXQT_DIR}/drop.png", "Stef Binde (stefonarch)", _LXQT_LICENCE, "lxqt_drop"),
        (_LXQT, f"{_LXQT_DIR}/flowers.png", "Stef Binde (stefonarch)", _LXQT_LICENCE, "lxqt_flowers"),
        (_LXQT, f"{_LXQT_DIR}/fog.jpg", "Stef Binde (stefonarch)", _LXQT_LICENCE, "lxqt_fog"),
        (_LXQT, f"{_LXQT_DIR}/this-is-not-windows.jpg", "Stef Binde (stefonarch)", _LXQT_LICENCE, "lxqt_this_is_not_windows"),
        (_PALAPELI, f"{_PALAPELI_DIR}/castle-maintenon.jpg", "Eric Pouhier",
         "FDL (castle-maintenon.desktop); GPL-2+ (debian/copyright)", "palapeli_castle_maintenon"),
        (_PALAPELI, f"{_PALAPELI_DIR}/cincinnati-bridge.jpg", "Derek Jensen",
         "public domain (cincinnati-bridge.desktop); GPL-2+ (debian/copyright)", "palapeli_cincinnati_bridge"),
        (_PALAPELI, f"{_PALAPELI_DIR}/citrus-fruits.jpg", "US Department of Agriculture",
         "public domain (citrus-fruits.desktop); GPL-2+ (debian/copyright)", "palapeli_citrus_fruits"),
        (_PALAPELI, f"{_PALAPELI_DIR}/european-honey-bee.jpg", "John Severns",
         "public domain (european-honey-bee.desktop); GPL-2+ (debian/copyright)", "palapeli_european_honey_bee"),
        (_PALAPELI, f"{_PALAPELI_DIR}/panther-chameleon-female.jpg", "B. Navez and others",
         "GNU-FDL (panther-chameleon-female.desktop); GPL-2+ (debian/copyright)", "palapeli_panther_chameleon_female"),
        ("sddm-theme-maldives", "usr/share/sddm/themes/maldives/background.jpg", "Nevit Dilmen",
         "CC-BY-3.0", "sddm_maldives"),
        *((_E, f"{_E_DIR}/{bg}.edj:edje/images/0", _E_AUTHOR, "BSD-2-clause",
           "enlightenment_" + bg.lower().replace("-", "_"))
          for bg in ("Bamboo", "Foggy-Trees", "God-Rays", "Green-Maple", "Lichen-Branches", "Mountain",
                     "Peaks", "Red-Maple", "Sea-of-Lanterns", "Snow-Trees", "Spruce-Needles",
                     "Sunset-Clouds", "White-Flower", "Yellow-Flower")),
    ]
)

# Files of a package that state a photo's author or licence beyond debian/copyright; each one is
# copied to licenses/<package>.<file name> when the package has it.
PHOTO_NOTICES: dict[str, str] = {
    **{s.name: f"{_LXQT_DIR}/License" for s in MORE_DEBIAN_PHOTOS if s.package == _LXQT},
    **{s.name: s.path.rsplit(".", 1)[0] + ".desktop" for s in MORE_DEBIAN_PHOTOS if s.package == _PALAPELI},
}

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


def split_archive_path(path: str) -> tuple[str, str | None]:
    """`"dir/Bamboo.edj:edje/images/0"` -> `("dir/Bamboo.edj", "edje/images/0")`; a plain path
    -> `(path, None)`."""
    file, sep, entry = path.partition(":")
    return (file, entry) if sep else (path, None)


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


def _deb_files(deb: Path, paths: set[str]) -> Iterator[tuple[str, bytes]]:
    """(path, contents) of each regular file of `paths` in the .deb, in the order of its data
    archive. Streams `dpkg-deb --fsys-tarfile` and keeps only those files in memory, one at a time,
    so nothing else of a large package is unpacked; stops reading once all have been seen."""
    left = set(paths)
    with tempfile.TemporaryFile() as errors:
        try:
            proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)],
                                    stdout=subprocess.PIPE, stderr=errors)
        except FileNotFoundError:
            raise VQCNIRError("`dpkg-deb` not found: the Debian photos need a Debian or Ubuntu "
                              "system (or use --no-debian)") from None
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
                for member in tar:
                    name = member.name.removeprefix("./")
                    if name in left and member.isfile():
                        left.discard(name)
                        yield name, tar.extractfile(member).read()
                        if not left:
                            break
        except tarfile.TarError as exc:
            raise VQCNIRError(f"cannot read the files of {deb.name}: {exc}") from None
        finally:
            proc.stdout.close()  # ends dpkg-deb if it stopped early (broken pipe)
            code = proc.wait()
        if left and code != 0:
            errors.seek(0)
            last = (errors.read().decode("utf-8", "replace").strip().splitlines() or ["failed"])[-1]
            raise VQCNIRError(f"`dpkg-deb --fsys-tarfile {deb.name}` failed: {last}")


def collect_photos(out_dir: str | Path, *, debian: bool = True, skimage: bool = True, more: bool = False,
                   max_side: int = 1920, progress: bool = True) -> list[dict]:
    """Fill `out_dir` with sharp photos and `manifest.json`; files already there are kept.

    `more` adds MORE_DEBIAN_PHOTOS (about 430 MB of downloads) to the default DEBIAN_PHOTOS."""
    from tqdm import tqdm

    if more and not debian:
        raise VQCNIRError("--more adds Debian packages: it cannot be combined with --no-debian")
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
        sources = DEBIAN_PHOTOS + (MORE_DEBIAN_PHOTOS if more else ())
        wanted = [s for s in sources if not (out_dir / f"{s.name}.png").exists()]
        packages = sorted({s.package for s in wanted})
        lic_dir = out_dir / "licenses"
        with tempfile.TemporaryDirectory(prefix="vqcnir-photos-") as tmp:
            tmp = Path(tmp)
            for pkg in tqdm(packages, desc="debian packages", disable=not progress):
                _run(["apt-get", "download", pkg], tmp)
                debs = sorted(tmp.glob(f"{pkg}_*.deb"))
                if not debs:
                    raise VQCNIRError(f"apt-get download {pkg} produced no .deb file")
                version = _deb_version(debs[0])
                lic_dir.mkdir(exist_ok=True)
                srcs = [s for s in wanted if s.package == pkg]
                copyright_path = f"usr/share/doc/{pkg}/copyright"
                notices = {PHOTO_NOTICES[s.name] for s in srcs if s.name in PHOTO_NOTICES}
                files = {split_archive_path(s.path)[0] for s in srcs}
                found, saved = set(), []

                def extra(src: PhotoSource) -> dict:
                    e = {"source_version": f"{pkg} {version}",
                         "copyright_file": f"licenses/{pkg}.copyright"}
                    notice = PHOTO_NOTICES.get(src.name)
                    if notice in found:
                        e["notice_file"] = f"licenses/{pkg}.{Path(notice).name}"
                    return e

                for path, data in _deb_files(debs[0], files | notices | {copyright_path}):
                    found.add(path)
                    if path == copyright_path:
                        (lic_dir / f"{pkg}.copyright").write_bytes(data)
                    if path in notices:
                        (lic_dir / f"{pkg}.{Path(path).name}").write_bytes(data)
                    for src in srcs:
                        file, entry = split_archive_path(src.path)
                        if file != path:
                            continue
                        blob = data if entry is None else read_eet_entry(data, entry, label=f"{pkg}: {file}")
                        dest = out_dir / f"{src.name}.png"
                        try:
                            with Image.open(io.BytesIO(blob)) as im:
                                size = _save(im, dest, max_side)
                        except (OSError, SyntaxError) as exc:  # PIL's errors for undecodable data
                            raise VQCNIRError(f"{pkg} {version}: {src.path} is not a readable image: {exc}") from None
                        record(src, dest.name, size, extra(src))
                        saved.append((src, size))
                for src, size in saved:  # a notice file that came after its photo in the package
                    if "notice_file" in extra(src) and "notice_file" not in manifest[f"{src.name}.png"]:
                        record(src, f"{src.name}.png", size, extra(src))
                missing = sorted(s.path for s in srcs if split_archive_path(s.path)[0] not in found)
                if missing:
                    raise VQCNIRError(f"{pkg} {version} has no {', '.join(missing)}: the package "
                                      "changed; please report it")
                debs[0].unlink()
    if not manifest:
        raise VQCNIRError("no photos collected: enable at least one source")
    return sorted(manifest.values(), key=lambda e: e["file"])
