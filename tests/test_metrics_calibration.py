"""PSNR, SSIM and NIQE against the original implementations on five TID2013 images.

The images ship inside the pyiqa wheel (``ResultsCalibra/``); the install step fetches them
(``make test`` runs ``scripts/fetch_test_data.py``), never this test. The reference values are
those tabulated on IQA-PyTorch's calibration page for the original (mostly MATLAB) implementations.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vqcnir import metrics

DATA = Path(__file__).resolve().parent / "data" / "tid2013"  # where scripts/fetch_test_data.py puts them
IMAGES = ("I03", "I04", "I06", "I08", "I19")
PSNR = {"I03": 21.11, "I04": 20.99, "I06": 27.01, "I08": 23.30, "I19": 21.62}
SSIM_ORIGINAL = {"I03": 0.6993, "I04": 0.9978, "I06": 0.9989, "I08": 0.9669, "I19": 0.6519}
SSIM_PYIQA = {"I03": 0.6997, "I04": 0.9978, "I06": 0.9989, "I08": 0.9671, "I19": 0.6521}
NIQE_MATLAB = {"I03": 15.7536, "I04": 3.6549, "I06": 3.2355, "I08": 3.1840, "I19": 8.6352}
NIQE_TOLERANCE = {"I03": 0.15, "I04": 0.05, "I06": 0.05, "I08": 0.05, "I19": 0.5}


@pytest.fixture(scope="module")
def calibration() -> Path:
    missing = [f"{d}/{n}.bmp" for d in ("dist_dir", "ref_dir") for n in IMAGES if not (DATA / d / f"{n}.bmp").is_file()]
    if missing:
        pytest.fail(f"{DATA} lacks {', '.join(missing[:2])}: the install step did not fetch the test data; "
                    f"run `make test`, or `python scripts/fetch_test_data.py` once", pytrace=False)
    return DATA


def _load(path: Path) -> torch.Tensor:
    a = np.array(Image.open(path).convert("RGB"))
    return torch.from_numpy(a).permute(2, 0, 1).double().div(255)[None]


@pytest.mark.parametrize("name", IMAGES)
def test_psnr_ssim_niqe_match_the_original_implementations(calibration, name):
    dist = _load(calibration / "dist_dir" / f"{name}.bmp")
    ref = _load(calibration / "ref_dir" / f"{name}.bmp")
    assert abs(metrics.compute("psnr", dist, ref).item() - PSNR[name]) < 0.01
    ssim = metrics.compute("ssim", dist, ref).item()
    assert abs(ssim - SSIM_ORIGINAL[name]) < 1e-3
    assert abs(ssim - SSIM_PYIQA[name]) < 2e-4  # the pyiqa protocol, which ``ssim`` follows
    niqe = metrics.compute("niqe", dist).item()
    assert abs(niqe - NIQE_MATLAB[name]) < NIQE_TOLERANCE[name]
