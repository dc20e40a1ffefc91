"""`vqcnir data photos --more`: the opt-in photo set, the Eet reader for Enlightenment's backgrounds,
and the Debian path of `collect_photos` against fake `apt-get` / `dpkg-deb` (no download)."""

from __future__ import annotations

import io
import json
import os
import struct
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vqcnir.data.cli import register
from vqcnir.data.eet import EET_MAGIC, read_eet_entry
from vqcnir.data.photos import (DEBIAN_PHOTOS, MORE_DEBIAN_PHOTOS, PHOTO_NOTICES,
                                SKIMAGE_PHOTOS, PhotoSource, collect_photos,
                                split_archive_path)
from vqcnir.errors import VQCNIRError

DEFAULT = DEBIAN_PHOTOS + SKIMAGE_PHOTOS


def eet_archive(entries: list[tuple[str, bytes, int]], dictionary: int = 0) -> bytes:
    """An Eet archive (file format 2, as read_eet_entry documents it) of (name, data, flags)
    entries; `dictionary` empty dictionary slots are written to check that the reader skips them."""
    names = b"".join(name.encode() + b"\0" for name, _, _ in entries)
    dict_strings = b"s\0" * dictionary
    start = 12 + 24 * len(entries) + 20 * dictionary
    data_at = start + len(names) + len(dict_strings)
    data_at += -data_at % 8
    directory, body, name_at, dict_at = b"", b"", start, start + len(names)
    for name, data, flags in entries:
        offset = data_at + len(body)
        raw = len(data) * 2 if flags & 1 else len(data)  # "uncompressed size" of a compressed entry
        directory += struct.pack(">6I", offset, len(data), raw, name_at, len(name) + 1, flags)
        name_at += len(name) + 1
        body += data + b"\0" * (-len(data) % 8)
    dico = b"".join(struct.pack(">5i", i, dict_at + 2 * i, 2, -1, 0) for i in range(dictionary))
    head = struct.pack(">3I", EET_MAGIC, len(entries), dictionary)
    out = head + directory + dico + names + dict_strings
    return out + b"\0" * (data_at - len(out)) + body


def test_the_eet_reader_returns_a_stored_entry_from_bytes_or_a_file(tmp_path):
    jpeg = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 40, 10)).save(jpeg, "JPEG")
    archive = eet_archive([("edje/images/1", b"smaller", 0), ("edje/images/0", jpeg.getvalue(), 0),
                           ("edje/file", b"x" * 13, 0)], dictionary=2)
    assert read_eet_entry(archive, "edje/images/0") == jpeg.getvalue()
    assert read_eet_entry(archive, "edje/images/1") == b"smaller"
    (tmp_path / "Bamboo.edj").write_bytes(archive)
    assert read_eet_entry(tmp_path / "Bamboo.edj", "edje/file") == b"x" * 13
    with Image.open(io.BytesIO(read_eet_entry(str(tmp_path / "Bamboo.edj"), "edje/images/0"))) as im:
        assert im.size == (8, 6)


@pytest.mark.parametrize("flags, says", [
    (0x1 | (10 << 3), r"is compressed \(type 10"),  # LZ4HC, as Enlightenment's edje_sources
    (0x2, "is encrypted"),
    (0x4, "is an alias"),
])
def test_the_eet_reader_refuses_entries_it_cannot_return_as_stored(flags, says):
    archive = eet_archive([("edje/images/0", b"\xff\xd8plain", 0), ("edje_sources", b"packed", flags)])
    with pytest.raises(VQCNIRError, match=says):
        read_eet_entry(archive, "edje_sources", label="Bamboo.edj")
    assert read_eet_entry(archive, "edje/images/0") == b"\xff\xd8plain"


def test_the_eet_reader_explains_missing_entries_and_other_files():
    archive = eet_archive([("edje/images/0", b"abc", 0)])
    with pytest.raises(VQCNIRError, match=r"no entry 'edje/images/9' \(it has 1: edje/images/0\)"):
        read_eet_entry(archive, "edje/images/9")
    with pytest.raises(VQCNIRError, match="not a readable Eet archive: magic"):
        read_eet_entry(b"\x89PNG\r\n\x1a\n" + b"\0" * 8, "edje/images/0")
    with pytest.raises(VQCNIRError, match="12-byte header"):
        read_eet_entry(b"\x1e\xe7", "edje/images/0")
    with pytest.raises(VQCNIRError, match="runs past the end"):
        read_eet_entry(archive[:-8], "edje/images/0")  # data cut off
    with pytest.raises(VQCNIRError, match="directory of 5 entries"):
        read_eet_entry(struct.pack(">3I", EET_MAGIC, 5, 0), "edje/images/0")


def test_archive_paths_name_an_entry_after_a_colon():
    assert split_archive_path("a/Bamboo.edj:edje/images/0") == ("a/Bamboo.edj", "edje/images/0")
    assert split_archive_path("usr/share/x.jpg") == ("usr/share/x.jpg", None)
    assert all(split_archive_path(s.path)[1] is None for s in DEBIAN_PHOTOS)


def test_the_default_set_is_unchanged_and_more_is_separate():
    names = [s.name for s in DEFAULT]
    assert len(names) == 43 and len(set(names)) == 43
    assert {n.split("_")[0] for n in names} == {"lomiri", "plasma", "mate", "skimage"}
    more = {s.name for s in MORE_DEBIAN_PHOTOS}
    assert not more & set(names)
    assert not {s.package for s in MORE_DEBIAN_PHOTOS} & {s.package for s in DEBIAN_PHOTOS}


def test_every_more_photo_has_an_author_a_licence_and_a_unique_plain_name():
    more = MORE_DEBIAN_PHOTOS
    assert len(more) == 31 and len({s.name for s in more}) == 31
    assert {s.package for s in more} == {"lxqt-themes", "palapeli-data", "sddm-theme-maldives",
                                         "enlightenment-data"}
    for s in more:
        assert s.author.strip() and s.licence.strip(), s
        assert s.name == s.name.lower() and " " not in s.name and "-" not in s.name, s
        assert s.name.split("_")[0] in {"lxqt", "palapeli", "sddm", "enlightenment"}, s
    edj = [s for s in more if s.package == "enlightenment-data"]
    assert len(edj) == 14
    assert all(split_archive_path(s.path)[0].endswith(".edj") and split_archive_path(s.path)[1] == "edje/images/0"
               for s in edj)
    assert set(PHOTO_NOTICES) <= {s.name for s in more}
    assert all(s.licence.startswith("CC-BY-SA-3.0") for s in more if s.package == "lxqt-themes")


# ---- collect_photos against fake apt-get and dpkg-deb --------------------------------------

def _colour(name: str) -> tuple[int, int, int]:
    h = sum(ord(c) * (i + 1) for i, c in enumerate(name))
    return (h % 200 + 30, h * 7 % 200 + 30, h * 13 % 200 + 30)


def _image_bytes(name: str, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (12, 8), _colour(name)).save(buf, fmt)
    return buf.getvalue()


def _fake_debs(folder: Path, sources, *, leave_out: str = "", compress: str = "") -> None:
    """One tar per package (a .deb's data archive), with every listed photo as a tiny image of its
    own colour, the package's copyright file and the notice files."""
    files: dict[str, dict[str, bytes]] = {}
    for s in sources:
        pkg = files.setdefault(s.package, {f"usr/share/doc/{s.package}/copyright": b"licence text\n"})
        file, entry = split_archive_path(s.path)
        if s.name == leave_out:
            continue
        if entry:
            flags = 0x1 | (10 << 3) if s.name == compress else 0
            pkg[file] = eet_archive([("edje/images/1", b"small", 0), ("edje_sources", b"zz", 0x51),
                                     (entry, _image_bytes(s.name, "JPEG"), flags)])
        else:
            pkg[file] = _image_bytes(s.name, "PNG" if file.endswith(".png") else "JPEG")
        if s.name in PHOTO_NOTICES:
            pkg[PHOTO_NOTICES[s.name]] = f"notice for {s.name}\n".encode()
    for pkg, members in files.items():
        with tarfile.open(folder / f"{pkg}.tar", "w") as tar:
            for path, data in [("usr/share/unrelated.txt", b"skip me"), *members.items()]:
                info = tarfile.TarInfo("./" + path)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def fake_apt(tmp_path, monkeypatch):
    """PATH with an `apt-get download` that copies debs/<pkg>.tar (logging the package) and a
    `dpkg-deb` that answers -f ... Version and prints the tar for --fsys-tarfile."""
    bin_dir, debs = tmp_path / "bin", tmp_path / "debs"
    bin_dir.mkdir()
    debs.mkdir()
    (bin_dir / "apt-get").write_text(f"""#!{sys.executable}
import shutil, sys
assert sys.argv[1] == "download"
pkg = sys.argv[2]
open({str(tmp_path / "apt.log")!r}, "a").write(pkg + "\\n")
try:
    shutil.copyfile({str(debs)!r} + "/" + pkg + ".tar", pkg + "_1:2.0-1_all.deb")
except FileNotFoundError:
    sys.exit("E: Unable to locate package " + pkg)
""")
    (bin_dir / "dpkg-deb").write_text(f"""#!{sys.executable}
import sys
if sys.argv[1] == "-f":
    print("1:2.0-1")
else:
    assert sys.argv[1] == "--fsys-tarfile"
    sys.stdout.buffer.write(open(sys.argv[2], "rb").read())
""")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    log = tmp_path / "apt.log"
    return debs, lambda: log.read_text().split() if log.exists() else []


def _pixel(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=int)[4, 6]


def test_more_is_opt_in_and_adds_only_its_packages(tmp_path, fake_apt):
    debs, apt_calls = fake_apt
    _fake_debs(debs, DEBIAN_PHOTOS + MORE_DEBIAN_PHOTOS)
    out = tmp_path / "photos"

    entries = collect_photos(out, skimage=False, progress=False)
    assert sorted(e["name"] for e in entries) == sorted(s.name for s in DEBIAN_PHOTOS)
    assert sorted(apt_calls()) == sorted({s.package for s in DEBIAN_PHOTOS})
    assert not (out / "lxqt_fog.png").exists()

    entries = collect_photos(out, skimage=False, more=True, progress=False)
    assert len(entries) == len(DEBIAN_PHOTOS) + 31
    assert sorted(apt_calls()[len(set(s.package for s in DEBIAN_PHOTOS)):]) == sorted(
        {s.package for s in MORE_DEBIAN_PHOTOS})  # the default packages are not fetched again
    by_name = {e["name"]: e for e in entries}
    for s in MORE_DEBIAN_PHOTOS:
        e = by_name[s.name]
        assert (e["author"], e["licence"], e["path"]) == (s.author, s.licence, s.path)
        assert e["source_version"] == f"{s.package} 1:2.0-1" and (e["width"], e["height"]) == (12, 8)
        assert (out / e["copyright_file"]).read_text() == "licence text\n"
        # each photo is the image at its path: Eet entries come out of the archive, decoded
        assert np.abs(_pixel(out / e["file"]) - _colour(s.name)).max() <= 6, s.name
    assert (out / by_name["lxqt_fog"]["notice_file"]).name == "lxqt-themes.License"
    # in the fake package this photo comes before the License file: its entry is completed after
    assert by_name["lxqt_butterfly_kenneth_wimer"]["notice_file"] == "licenses/lxqt-themes.License"
    assert (out / "licenses/palapeli-data.castle-maintenon.desktop").read_text() == \
        "notice for palapeli_castle_maintenon\n"
    assert by_name["palapeli_castle_maintenon"]["notice_file"] == "licenses/palapeli-data.castle-maintenon.desktop"
    assert "notice_file" not in by_name["enlightenment_bamboo"] | by_name["mate_wood"]
    manifest = json.loads((out / "manifest.json").read_text())["photos"]
    assert {e["file"] for e in manifest} == {p.name for p in out.glob("*.png")}
    assert not list(Path(tempfile.gettempdir()).glob("vqcnir-photos-*/*.deb"))  # temp folder removed


def test_a_missing_photo_or_a_compressed_entry_stops_with_one_clear_error(tmp_path, fake_apt):
    debs, _ = fake_apt
    more = tuple(s for s in MORE_DEBIAN_PHOTOS if s.package == "enlightenment-data")
    _fake_debs(debs, DEBIAN_PHOTOS + more, leave_out="enlightenment_peaks")
    with pytest.raises(VQCNIRError, match=r"enlightenment-data 1:2.0-1 has no .*Peaks.edj:edje/images/0"):
        collect_photos(tmp_path / "a", skimage=False, more=True, progress=False)
    _fake_debs(debs, DEBIAN_PHOTOS + more, compress="enlightenment_mountain")
    with pytest.raises(VQCNIRError, match=r"Mountain.edj: entry 'edje/images/0' is compressed"):
        collect_photos(tmp_path / "b", skimage=False, more=True, progress=False)


def test_the_cli_passes_more_and_refuses_it_without_debian(tmp_path):
    import argparse

    parser = argparse.ArgumentParser(prog="vqcnir")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["data", "photos", "-o", str(tmp_path / "p"), "--more", "--no-debian"])
    assert args.more and args.no_debian
    with pytest.raises(VQCNIRError, match="--more adds Debian packages"):
        args.func(args)
    assert not parser.parse_args(["data", "photos", "-o", str(tmp_path / "p")]).more
