"""`vqcnir evaluate`: pairing, outputs with the protocol, errors, baselines and --weights."""

from __future__ import annotations

import argparse
import csv
import json

import numpy as np
import pytest
from PIL import Image

from vqcnir.errors import VQCNIRError
from vqcnir.metrics.cli import EXIT_UNAVAILABLE, register


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="vqcnir")
    register(parser.add_subparsers())
    args = parser.parse_args(["evaluate", "--no-progress", *argv])
    return args.func(args)


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture
def folders(tmp_path):
    rng = np.random.default_rng(0)
    for rel in ("a.png", "sub/b.png"):
        gt = (rng.random((100, 200, 3)) * 255).astype(np.uint8)
        _save(tmp_path / "gt" / rel, gt)
        _save(tmp_path / "night" / rel, (gt * 0.15).astype(np.uint8))
        noisy = np.clip(gt.astype(int) + rng.integers(-8, 9, gt.shape), 0, 255).astype(np.uint8)
        _save(tmp_path / "restored" / rel, noisy)
    return tmp_path


def test_scores_pairs_and_records_the_protocol(folders, capsys):
    out = folders / "eval"
    code = run("--restored", str(folders / "restored"), "--gt", str(folders / "gt"),
               "--metrics", "psnr,ssim,psnr_y", "--crop", "2", "--out", str(out), "--per-image")
    assert code == 0
    printed = capsys.readouterr().out
    assert "sub/b.png" in printed and "psnr_y" in printed
    doc = json.loads((out / "metrics.json").read_text())
    proto = doc["protocol"]
    assert proto["crop"] == 2 and proto["images"] == 2 and proto["packages"]["torch"]
    assert proto["metrics"]["ssim"]["window"] == "Gaussian 11x11, sigma 1.5"
    assert proto["metrics"]["ssim"]["pyiqa_equivalent"] == "ssim"
    assert "YCbCr" in proto["metrics"]["psnr_y"]["colour"]
    assert [r["image"] for r in doc["per_image"]] == ["a.png", "sub/b.png"]
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert rows[0].keys() == {"image", "psnr", "ssim", "psnr_y"}
    assert abs(np.mean([float(r["psnr"]) for r in rows]) - doc["mean"]["psnr"]) < 1e-9
    with pytest.raises(VQCNIRError, match="already exists"):
        run("--restored", str(folders / "restored"), "--gt", str(folders / "gt"), "--out", str(out))


def test_identical_folders_report_inf_psnr_and_unit_ssim(folders, capsys):
    out = folders / "same"
    assert run("--restored", str(folders / "gt"), "--gt", str(folders / "gt"), "--out", str(out)) == 0
    assert "inf" in capsys.readouterr().out
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["mean"]["psnr"] == "inf" and doc["per_image"][0]["psnr"] == "inf"
    assert doc["mean"]["ssim"] == pytest.approx(1.0, abs=1e-12)
    assert (out / "metrics.csv").read_text().splitlines()[1].split(",")[1] == "inf"


def test_mismatched_folders_are_rejected_clearly(folders):
    (folders / "restored" / "sub" / "b.png").unlink()
    with pytest.raises(VQCNIRError, match="ground-truth image.*no restored counterpart.*sub/b.png"):
        run("--restored", str(folders / "restored"), "--gt", str(folders / "gt"), "--out", str(folders / "e1"))
    _save(folders / "restored" / "extra.png", np.zeros((100, 200, 3), np.uint8))
    _save(folders / "restored" / "sub" / "b.png", np.zeros((100, 200, 3), np.uint8))
    with pytest.raises(VQCNIRError, match="no ground truth.*extra.png"):
        run("--restored", str(folders / "restored"), "--gt", str(folders / "gt"), "--out", str(folders / "e2"))
    (folders / "restored" / "extra.png").unlink()
    _save(folders / "restored" / "a.png", np.zeros((100, 201, 3), np.uint8))
    with pytest.raises(VQCNIRError, match=r"a.png: restored is 201×100 but gt is 200×100"):
        run("--restored", str(folders / "restored"), "--gt", str(folders / "gt"), "--out", str(folders / "e3"))


def test_user_errors_are_one_clear_line(folders):
    with pytest.raises(VQCNIRError, match="unknown metric 'psnrr'"):
        run("--restored", str(folders / "restored"), "--gt", str(folders / "gt"), "--metrics", "psnrr")
    with pytest.raises(VQCNIRError, match="give --gt"):
        run("--restored", str(folders / "restored"), "--metrics", "psnr")
    with pytest.raises(VQCNIRError, match="not a folder"):
        run("--restored", str(folders / "nope"))
    with pytest.raises(VQCNIRError, match="exactly one of"):
        run("--night", str(folders / "night"), "--gt", str(folders / "gt"))


def test_no_reference_and_unavailable_metrics_do_not_crash(folders, monkeypatch, capsys):
    monkeypatch.setenv("VQCNIR_PYIQA_WEIGHTS", str(folders))  # no weights there
    out = folders / "nr"
    code = run("--restored", str(folders / "restored"), "--metrics", "niqe,musiq", "--out", str(out))
    assert code == EXIT_UNAVAILABLE
    assert "musiq" in capsys.readouterr().out
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["protocol"]["gt"] is None and "musiq" in doc["protocol"]["unavailable"]
    assert np.isfinite(doc["mean"]["niqe"]) and "musiq" not in doc["mean"]


@pytest.mark.parametrize("method", ["identity", "gamma", "clahe"])
def test_baselines_restore_then_score(folders, method):
    out = folders / f"eval_{method}"
    assert run("--night", str(folders / "night"), "--gt", str(folders / "gt"), "--method", method,
               "--out", str(out)) == 0
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["protocol"]["source"]["method"] == method
    assert (out / "restored" / "sub" / "b.png").is_file()
    if method == "identity":
        night = np.asarray(Image.open(folders / "night" / "a.png"))
        assert np.array_equal(np.asarray(Image.open(out / "restored" / "a.png")), night)
    with pytest.raises(VQCNIRError, match="already exists"):
        run("--night", str(folders / "night"), "--gt", str(folders / "gt"), "--method", method,
            "--out", str(out), "--overwrite")


def test_weights_restore_then_score(tmp_path):
    vqcnir = pytest.importorskip("vqcnir")
    if not hasattr(vqcnir, "load_model"):
        pytest.skip("the restore API (vqcnir.load_model) is not available yet")
    import torch

    from vqcnir.nn.config import preset

    torch.manual_seed(0)
    model = vqcnir.VQCNIR(preset("tiny"))
    weights = tmp_path / "tiny.pth"
    torch.save({"params": model.state_dict()}, weights)
    rng = np.random.default_rng(1)
    _save(tmp_path / "night" / "x.png", (rng.random((24, 32, 3)) * 60).astype(np.uint8))
    _save(tmp_path / "gt" / "x.png", (rng.random((24, 32, 3)) * 255).astype(np.uint8))
    out = tmp_path / "eval"
    assert run("--night", str(tmp_path / "night"), "--gt", str(tmp_path / "gt"), "--weights", str(weights),
               "--out", str(out)) == 0
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["protocol"]["source"]["kind"] == "model" and np.isfinite(doc["mean"]["psnr"])


def test_list_metrics(capsys):
    assert run("--list-metrics") == 0
    printed = capsys.readouterr().out
    assert "stlpips_vgg" in printed and "niqe" in printed
