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


def _pairs(root, names, shape, seed, darken, restored=False):
    """Random ground truths, night = gt * darken, and optionally noisy 'restored' copies."""
    rng = np.random.default_rng(seed)
    for rel in names:
        gt = (rng.random(shape) * 255).astype(np.uint8)
        _save(root / "gt" / rel, gt)
        _save(root / "night" / rel, (gt * darken).astype(np.uint8))
        if restored:
            noisy = np.clip(gt.astype(int) + rng.integers(-8, 9, gt.shape), 0, 255).astype(np.uint8)
            _save(root / "restored" / rel, noisy)


@pytest.fixture
def folders(tmp_path):
    _pairs(tmp_path, ("a.png", "sub/b.png"), (100, 200, 3), seed=0, darken=0.15, restored=True)
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


# --- several methods in one run -----------------------------------------------------------------

@pytest.fixture
def small(tmp_path):
    """24×32 night/gt pairs and a tiny untrained checkpoint: enough to compare methods quickly."""
    _pairs(tmp_path, ("x.png", "sub/y.png"), (24, 32, 3), seed=2, darken=0.2)
    return tmp_path


@pytest.fixture
def tiny_weights(tmp_path):
    import torch

    import vqcnir
    from vqcnir.nn.config import preset

    torch.manual_seed(0)
    weights = tmp_path / "tiny.pth"
    torch.save({"params": vqcnir.VQCNIR(preset("tiny")).state_dict()}, weights)
    return weights


def _main(*argv) -> int:
    from vqcnir.cli import main

    return main(["evaluate", "--no-progress", *map(str, argv)])


def _means(path):
    return json.loads(path.read_text())["mean"]


def test_several_methods_are_restored_scored_and_compared(small, tiny_weights, capsys):
    out = small / "eval"
    code = run("--night", str(small / "night"), "--gt", str(small / "gt"), "--method", "identity, gamma",
               "--weights", str(tiny_weights), "--metrics", "psnr,ssim", "--out", str(out))
    assert code == 0
    printed = capsys.readouterr().out
    titles = ["night input (identity)", "gamma", f"VQCNIR ({tiny_weights})"]
    for label in ("identity", "gamma", "model"):
        assert (out / label / "restored" / "sub" / "y.png").is_file()
        assert (out / label / "metrics.csv").is_file()
    assert not (out / "restored").exists() and not (out / "metrics.json").exists()

    doc = json.loads((out / "comparison.json").read_text())
    assert list(doc["methods"]) == ["identity", "gamma", "model"]
    assert doc["metrics"] == ["psnr", "ssim"] and doc["protocol"]["images"] == 2
    assert doc["protocol"]["gt"] == str(small / "gt") and doc["protocol"]["crop"] == 0
    assert doc["protocol"]["metrics"]["ssim"]["window"] == "Gaussian 11x11, sigma 1.5"
    assert doc["methods"]["model"]["source"]["kind"] == "model"
    assert doc["methods"]["gamma"]["source"]["method"] == "gamma"
    for label in doc["methods"]:
        assert doc["methods"][label]["mean"] == _means(out / label / "metrics.json")

    rows = list(csv.DictReader((out / "comparison.csv").open()))
    assert [r["title"] for r in rows] == titles and [r["images"] for r in rows] == ["2"] * 3
    assert float(rows[1]["psnr"]) == doc["methods"]["gamma"]["mean"]["psnr"]

    md = (out / "comparison.md").read_text().splitlines()
    assert md[0] == "| method | psnr ↑ | ssim ↑ | images |" and md[1].startswith("|:---|")
    assert [line.split(" | ")[0] for line in md[2:]] == [f"| {t}" for t in titles]
    identity = doc["methods"]["identity"]["mean"]
    assert md[2] == f"| night input (identity) | {identity['psnr']:.2f} | {identity['ssim']:.4f} | 2 |"
    assert all(t in printed for t in titles) and f"{identity['psnr']:.2f}" in printed

    # the identity row is the night folder scored as it is
    assert run("--restored", str(small / "night"), "--gt", str(small / "gt"), "--metrics", "psnr,ssim",
               "--out", str(small / "direct")) == 0
    assert _means(small / "direct" / "metrics.json") == identity


def test_unknown_method_is_one_error_line(small, capsys):
    assert _main("--night", small / "night", "--gt", small / "gt", "--method", "identity,gama",
                 "--out", small / "eval") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")
    assert "gama" in err[0] and "identity, gamma, clahe" in err[0]
    assert not (small / "eval").exists()


def test_missing_weights_is_one_error_line(small, capsys):
    assert _main("--night", small / "night", "--gt", small / "gt", "--method", "identity",
                 "--weights", small / "nope.pth", "--out", small / "eval") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "nope.pth: no such file" in err[0]
    assert not (small / "eval").exists()


def test_rerun_refuses_before_restoring_anything(small):
    out = small / "eval"
    common = ("--night", str(small / "night"), "--gt", str(small / "gt"), "--method", "identity,gamma",
              "--out", str(out))
    assert run(*common) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(VQCNIRError, match="comparison.csv already exists.*--overwrite"):
        run(*common, "--restored", str(small / "again"))
    assert not (small / "again").exists()
    with pytest.raises(VQCNIRError, match=r"identity/restored/sub/y.png already exists; point --restored"):
        run(*common, "--overwrite")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert run(*common, "--restored", str(small / "again"), "--overwrite") == 0
    assert (small / "again" / "gamma" / "x.png").is_file()
    assert json.loads((out / "comparison.json").read_text())["methods"]["gamma"]["source"]["restored_to"] \
        == str(small / "again" / "gamma")


# --- GT-mean: brightness taken from the ground truth --------------------------------------------

def test_match_gt_mean_scales_luma_to_the_ground_truth():
    import torch

    from vqcnir.metrics.gt_mean import match_gt_mean

    gt = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.8
    dim = gt * 0.5
    matched = match_gt_mean(dim, gt)
    assert torch.allclose(matched, gt, atol=1e-6)  # a pure exposure error disappears
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    bright = match_gt_mean(torch.full_like(gt, 0.9), gt * 0.2)
    assert torch.allclose((bright * luma).sum(1).mean(), (gt * 0.2 * luma).sum(1).mean(), atol=1e-6)
    black = torch.zeros_like(gt)
    assert torch.equal(match_gt_mean(black, gt), black)  # nothing to scale: scored as it is
    # a batch: each image gets its own scale, and a black one stays black beside a dim one
    batch = match_gt_mean(torch.cat([dim, gt * 0.25, black]), torch.cat([gt, gt, gt]))
    assert torch.allclose(batch[:2], torch.cat([gt, gt]), atol=1e-6) and torch.equal(batch[2:], black)


def test_gt_mean_scores_a_darkened_copy_as_exact(folders, capsys):
    out = folders / "gtmean"
    args = ("--restored", str(folders / "night"), "--gt", str(folders / "gt"), "--metrics", "psnr")
    assert run(*args, "--out", str(folders / "plain")) == 0
    assert run(*args, "--gt-mean", "--out", str(out)) == 0
    assert "GT-mean" in capsys.readouterr().out
    plain, matched = _means(folders / "plain" / "metrics.json"), _means(out / "metrics.json")
    # night = gt * 0.15 (rounded to 8 bits): only rounding is left once the exposure is matched
    assert plain["psnr"] < 10 and matched["psnr"] > 25
    assert "BT.601" in json.loads((out / "metrics.json").read_text())["protocol"]["gt_mean"]
    # the same protocol as a metric of its own: plain and GT-mean scores from one command
    both = folders / "both"
    assert run("--restored", str(folders / "night"), "--gt", str(folders / "gt"), "--metrics",
               "psnr,gt_mean_psnr,gt_mean_ssim", "--out", str(both)) == 0
    scores = _means(both / "metrics.json")
    assert scores["psnr"] == pytest.approx(plain["psnr"]) and scores["gt_mean_psnr"] == pytest.approx(matched["psnr"])
    assert 0 < scores["gt_mean_ssim"] <= 1
    proto = json.loads((both / "metrics.json").read_text())["protocol"]
    assert proto["gt_mean"] is False and "BT.601" in proto["metrics"]["gt_mean_psnr"]["gt_mean"]


def test_gt_mean_without_gt_refuses_before_restoring(small):
    out = small / "eval"
    with pytest.raises(VQCNIRError, match="--gt-mean.*--gt"):
        run("--night", str(small / "night"), "--method", "gamma", "--gt-mean", "--out", str(out))
    assert not out.exists()


def test_gt_mean_comparison_says_so(small, capsys):
    out = small / "eval"
    assert run("--night", str(small / "night"), "--gt", str(small / "gt"), "--method", "identity,gamma",
               "--metrics", "psnr", "--gt-mean", "--out", str(out)) == 0
    assert "GT-mean:" in (out / "comparison.md").read_text()
    assert json.loads((out / "comparison.json").read_text())["protocol"]["gt_mean"]


def test_self_ensemble_is_recorded_and_changes_the_model_scores(small, tiny_weights):
    plain, ensembled = small / "plain", small / "ensembled"
    for out, extra in ((plain, ()), (ensembled, ("--self-ensemble",))):
        assert _main("--night", small / "night", "--gt", small / "gt", "--weights", tiny_weights,
                     "--metrics", "psnr", "--out", out, *extra) == 0
    docs = [json.loads((out / "metrics.json").read_text()) for out in (plain, ensembled)]
    assert [d["protocol"]["source"]["self_ensemble"] for d in docs] == [False, True]
    assert docs[0]["mean"]["psnr"] != docs[1]["mean"]["psnr"]


def test_self_ensemble_without_a_model_is_one_error_line(small, capsys):
    assert _main("--night", small / "night", "--gt", small / "gt", "--method", "gamma", "--self-ensemble",
                 "--out", small / "eval") == 2
    assert capsys.readouterr().err.strip() == (
        "error: --self-ensemble averages a model's restorations; give --night DIR --weights NAME|PATH")
    assert not (small / "eval").exists()


def test_flat_images_are_undefined_for_niqe_and_left_out_of_the_mean(folders, capsys):
    restored = folders / "restored"
    _save(restored / "black.png", np.zeros((100, 200, 3), np.uint8))
    _save(restored / "white.png", np.full((100, 200, 3), 255, np.uint8))
    out = folders / "nr"
    assert run("--restored", str(restored), "--metrics", "niqe", "--out", str(out), "--per-image") == 0
    printed = capsys.readouterr().out
    assert "niqe: 2 image(s) left out of the mean, undefined because fewer than two 96x96 blocks" in printed
    assert "black.png, white.png" in printed
    doc = json.loads((out / "metrics.json").read_text())
    textured = [row["niqe"] for row in doc["per_image"] if row["image"] in ("a.png", "sub/b.png")]
    assert doc["mean"]["niqe"] == pytest.approx(np.mean(textured))
    assert doc["undefined"]["niqe"]["images"] == ["black.png", "white.png"]
    assert "uniform image" in doc["protocol"]["metrics"]["niqe"]["undefined_when"]
    assert [line.split()[-1] for line in printed.splitlines() if line.startswith("niqe ")] == ["2"]
