"""`vqcnir evaluate` on videos and frame folders: per-frame PSNR/SSIM, warp_error and flicker."""

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("av")
pytest.importorskip("cv2")

from vqcnir.cli import main  # noqa: E402
from vqcnir.metrics.video import evaluate_video  # noqa: E402
from vqcnir.video.io import EncodeSettings, VideoInfo, encode_video  # noqa: E402

SAMPLE = Path(__file__).parent.parent / "samples" / "video"


def texture(seed=0, size=(80, 120)):
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, (size[0] // 4, size[1] // 4, 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(base).resize((size[1], size[0]), Image.Resampling.BICUBIC))


def panning(frames=5, step=2, noise=0.0, seed=0):
    """A window sliding over a smooth texture, optionally with noise re-drawn on every frame."""
    big = texture(seed)
    rng = np.random.default_rng(seed + 1)
    out = []
    for t in range(frames):
        window = big[10:58, 10 + step * t:74 + step * t].astype(np.float64)
        out.append(np.clip(window + rng.normal(0, noise, window.shape), 0, 255).astype(np.uint8))
    return out


def write_folder(folder, frames):
    folder.mkdir(parents=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{i:03d}.png")
    return folder


def write_video(path, frames):
    h, w = frames[0].shape[:2]
    info = VideoInfo(path, w, h, len(frames), Fraction(1, 25), Fraction(25), 0, ())
    encode_video(path, enumerate(frames), info, EncodeSettings("ffv1"), "matroska")
    return path


def test_flicker_is_the_mean_brightness_step(tmp_path):
    base = np.full((24, 32, 3), 100, np.uint8)
    frames = [base + d for d in (0, 10, 10, 30)]
    ev = evaluate_video(write_folder(tmp_path / "f", frames), metrics=["flicker"], progress=False)
    assert ev.means["flicker"] == pytest.approx((10 + 0 + 20) / 3, abs=1e-3)


def test_warp_error_sees_redrawn_noise_but_not_motion(tmp_path):
    clean = write_video(tmp_path / "clean.mkv", panning())
    noisy = write_folder(tmp_path / "noisy", panning(noise=12.0))
    ev = evaluate_video(noisy, clean, progress=False)
    assert ev.means["warp_error_gt"] < 1.5  # a pan is tracked by the flow
    assert ev.means["warp_error"] > 4 * ev.means["warp_error_gt"]
    assert ev.means["flicker"] < 1.0 and ev.metrics[:2] == ["psnr", "ssim"]
    assert len(ev.rows) == 5 and np.isnan(ev.rows[0]["warp_error"])  # the first frame ends no pair
    same = evaluate_video(write_folder(tmp_path / "clean_frames", panning()), clean, progress=False)
    assert same.means["psnr"] == float("inf")
    assert same.means["warp_error"] == pytest.approx(same.means["warp_error_gt"])


def test_cli_on_the_bundled_clip(tmp_path, capsys):
    out = tmp_path / "ev"
    assert main(["evaluate", "--restored", str(SAMPLE / "night" / "clip_0000.mkv"),
                 "--gt", str(SAMPLE / "gt" / "clip_0000.mkv"), "--out", str(out), "--no-progress"]) == 0
    doc = json.loads((out / "metrics.json").read_text())
    assert set(doc["mean"]) == {"psnr", "ssim", "warp_error", "warp_error_gt", "flicker", "flicker_gt"}
    assert doc["protocol"]["frames"] == 24 and "DIS" in doc["protocol"]["metrics"]["warp_error"]["flow"]
    assert "warp_error_gt" in capsys.readouterr().out


def test_frame_counts_must_match(tmp_path, capsys):
    a = write_folder(tmp_path / "a", panning(frames=3))
    b = write_video(tmp_path / "b.mkv", panning(frames=4))
    assert main(["evaluate", "--restored", str(a), "--gt", str(b), "--out", str(tmp_path / "ev"),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "more frames" in err and "Traceback" not in err


def test_crop_and_gt_mean_apply_per_frame(tmp_path):
    clean = write_folder(tmp_path / "clean", panning(frames=3))
    darker = write_folder(tmp_path / "darker", [(f * 0.5).astype(np.uint8) for f in panning(frames=3)])
    plain = evaluate_video(darker, clean, ["psnr"], progress=False)
    matched = evaluate_video(darker, clean, ["psnr"], crop=4, gt_mean=True, progress=False)
    assert matched.means["psnr"] > plain.means["psnr"] + 10  # brightness taken from the ground truth
    assert matched.protocol["crop"] == 4 and len(matched.rows) == 3
