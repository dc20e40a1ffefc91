"""`vqcnir synth --video`: clips with ground truth from a photo and a camera path."""

import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("av")
pytest.importorskip("cv2")

from vqcnir.cli import main  # noqa: E402
from vqcnir.data.video_synth import CameraConfig, camera_path  # noqa: E402
from vqcnir.video.io import probe, read_frames  # noqa: E402


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "sharp"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(60, 255, (90, 120, 3), dtype=np.uint8)).save(folder / "a.png")
    return folder


def test_clips_have_fixed_darkening_and_per_frame_blur_and_noise(tmp_path, photos):
    out = tmp_path / "clips"
    args = ["synth", "--video", str(photos), "-o", str(out), "--pairs", "2", "--frames-per-video", "5",
            "--size", "48x32", "-q"]
    assert main(args) == 0
    for name in ("clip_0000", "clip_0001"):
        night = [f.rgb for f in read_frames(out / "night" / f"{name}.mkv")]
        gt = [f.rgb for f in read_frames(out / "gt" / f"{name}.mkv")]
        assert len(night) == len(gt) == 5 and night[0].shape == (32, 48, 3)
        assert np.mean(night) < 0.6 * np.mean(gt)  # dark
        record = json.loads((out / "params" / f"{name}.json").read_text())
        assert "curve_r" in record["darken"]  # one darkening curve for the clip
        frames = record["frames"]
        assert len({f["noise_seed"] for f in frames}) == 5  # noise drawn per frame
        assert len({f["blur"]["kernel_seed"] for f in frames}) == 5  # shake blur drawn per frame
        assert not np.array_equal(gt[0], gt[-1])  # the camera moved
    assert probe(out / "night" / "clip_0000.mkv").rate == 30
    assert main(args) == 0  # resumes: both clips are there, nothing is redone
    assert main(args[:-1] + ["--seed", "1", "-q"]) == 2  # other settings into the same folder are refused


def test_camera_path_is_smooth_and_bounded():
    path = camera_path(np.random.default_rng(3), 30, CameraConfig(pan=0.2, zoom=0.1, shake=1.0))
    dx = np.array([p[0] for p in path])
    zoom = np.array([p[2] for p in path])
    assert np.all(np.abs(dx) <= 0.1) and np.all(np.abs(zoom - 1) <= 0.1 + 1e-9)
    assert np.abs(np.diff(dx)).max() < 0.02  # eased pan, no jumps
