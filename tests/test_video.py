"""`vqcnir restore` on videos, with a tiny model and clips made here with PyAV: frame count,
variable timestamps, rotation and audio survive; a killed job resumes; bad files fail alone."""

from fractions import Fraction

import numpy as np
import pytest
import torch
from PIL import Image

av = pytest.importorskip("av")

from vqcnir.cli import main  # noqa: E402
from vqcnir.engine import RestoreOptions, prepare_for_inference  # noqa: E402
from vqcnir.video import restore as video_restore  # noqa: E402
from vqcnir.video.io import EncodeSettings, VideoInfo, encode_video, probe, read_frames  # noqa: E402
from vqcnir.weights import save_checkpoint  # noqa: E402

# variable frame rate, in 1/90000 s, first frame not at zero
PTS = [1500, 4500, 7500, 13500, 14500, 22500]
TIME_BASE = Fraction(1, 90000)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def weights(tmp_path, tiny_model):
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(path, tiny_model.state_dict(), tiny_model.config)
    return path


def make_clip(path, pts=PTS, size=(64, 48), audio=True, rotation=90, video=True):
    """A dark moving-gradient clip (H.264) with a 440 Hz AAC track."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", options={"movie_timescale": "90000"}) as out:
        if video:
            v = out.add_stream("libx264", rate=30)
            v.width, v.height, v.pix_fmt = size[0], size[1], "yuv420p"
            v.time_base = v.codec_context.time_base = TIME_BASE
            v.codec_context.max_b_frames = 0
            if rotation:
                v.set_display_rotation(rotation)
        a = out.add_stream("aac", rate=48000, layout="mono") if audio else None
        if video:
            x = np.linspace(0, 60, size[0])[None, :, None]
            for i, p in enumerate(pts):
                img = np.clip(x + 4 * i + rng.normal(0, 6, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                frame.pts, frame.time_base = p, TIME_BASE
                out.mux(v.encode(frame))
            out.mux(v.encode(None))
        if a is not None:
            t = np.arange(1024 * 12) / 48000
            wave = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for k in range(12):
                frame = av.AudioFrame.from_ndarray(wave[None, k * 1024:(k + 1) * 1024], format="fltp", layout="mono")
                frame.sample_rate, frame.pts = 48000, k * 1024
                out.mux(a.encode(frame))
            out.mux(a.encode(None))
    return path


def audio_packets(path):
    with av.open(str(path)) as c:
        return [(p.pts, bytes(p)) for p in c.demux(c.streams.audio[0]) if p.size]


def run(*args):
    return main([str(a) for a in args])


def test_round_trip_keeps_frames_timestamps_rotation_and_audio(tmp_path, weights):
    clip = make_clip(tmp_path / "clip.mp4")
    out = tmp_path / "out"
    assert run("restore", clip, "-o", out, "--weights", weights, "--video-segment", "4") == 0
    result = out / "clip.mp4"
    frames = list(read_frames(result))
    assert [f.pts for f in frames] == PTS  # variable frame rate, first frame at 1500 kept
    info = probe(result)
    assert info.time_base == TIME_BASE and info.rotation == 90 and (info.width, info.height) == (64, 48)
    assert audio_packets(result) == audio_packets(clip)  # copied, not re-encoded
    assert not any(p.name.startswith(".") for p in out.iterdir())  # the work folder is gone
    before = [f.rgb.mean() for f in read_frames(clip)]
    assert not np.allclose([f.rgb.mean() for f in frames], before, atol=1)  # it was restored


def test_side_by_side_and_lossless_codec(tmp_path, weights):
    clip = make_clip(tmp_path / "clip.mp4", audio=False, rotation=0)
    out = tmp_path / "out"
    assert run("restore", clip, "-o", out, "--weights", weights, "--video-side-by-side",
               "--video-codec", "ffv1", "--no-temporal") == 0
    frames = list(read_frames(out / "clip.mkv"))  # FFV1 goes to Matroska
    assert len(frames) == len(PTS) and frames[0].rgb.shape == (48, 128, 3)
    night = list(read_frames(clip))
    assert all(np.array_equal(f.rgb[:, :64], n.rgb) for f, n in zip(frames, night))  # lossless left half


def test_a_killed_job_resumes_where_it_stopped(tmp_path, weights, monkeypatch):
    from vqcnir.weights import load_network

    clip = make_clip(tmp_path / "clip.mp4", audio=False)
    model = prepare_for_inference(load_network(weights), torch.device("cpu"))
    options = video_restore.VideoOptions(encode=EncodeSettings("ffv1"), segment_frames=2)

    def restore(target, seen=None):
        return video_restore.restore_video(
            model, clip, target, RestoreOptions(), options, model_id="tiny",
            progress=(lambda done, total: seen.append(done)) if seen is not None else None)

    whole = restore(tmp_path / "whole" / "clip.mkv")
    assert whole.frames == 6 and whole.restored == 6

    real_encode, calls = video_restore.encode_video, []

    def killed_during_second_segment(path, frames, *args):
        calls.append(path)
        if len(calls) == 2:
            next(iter(frames))
            raise KeyboardInterrupt
        return real_encode(path, frames, *args)

    monkeypatch.setattr(video_restore, "encode_video", killed_during_second_segment)
    target = tmp_path / "out" / "clip.mkv"
    with pytest.raises(KeyboardInterrupt):
        restore(target)
    assert not target.exists()
    monkeypatch.setattr(video_restore, "encode_video", real_encode)
    seen = []
    resumed = restore(target, seen)
    assert seen[0] == 2 and resumed.restored == 4 and resumed.frames == 6  # the first segment was kept
    for a, b in zip(read_frames(whole.path), read_frames(resumed.path), strict=True):
        assert a.pts == b.pts and np.array_equal(a.rgb, b.rgb)  # the temporal state carried over exactly


def test_changed_options_start_over(tmp_path, weights, capsys):
    clip = make_clip(tmp_path / "clip.mp4", audio=False, pts=PTS[:2])
    out = tmp_path / "out"
    parts = out / ".clip.mp4.parts"
    parts.mkdir(parents=True)
    (parts / "job.json").write_text("{}")  # from another job
    (parts / "000000.mp4").write_bytes(b"stale")
    assert run("restore", clip, "-o", out, "--weights", weights) == 0
    assert len(list(read_frames(out / "clip.mp4"))) == 2 and not parts.exists()
    assert run("restore", clip, "-o", out, "--weights", weights) == 0  # exists: kept
    assert "skipped 1" in capsys.readouterr().out


def test_bad_videos_fail_alone(tmp_path, weights, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    good = make_clip(tmp_path / "good.mp4", audio=False, pts=PTS[:2])
    (folder / "garbage.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    (folder / "truncated.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    make_clip(folder / "sound_only.m4a.mp4", video=False)
    make_clip(folder / "fine.mp4", audio=False, pts=PTS[:2])
    lossless = tmp_path / "lossless.mkv"
    info = VideoInfo(lossless, 16, 16, 2, Fraction(1, 25), Fraction(25), 0, ())
    encode_video(lossless, [(0, np.zeros((16, 16, 3), np.uint8))], info, EncodeSettings("ffv1"), "matroska")
    # a codec id no FFmpeg knows, in an otherwise valid file
    (folder / "unknown_codec.mkv").write_bytes(lossless.read_bytes().replace(b"V_FFV1", b"V_QQQ1"))
    Image.fromarray(np.full((16, 16, 3), 20, np.uint8)).save(folder / "photo.png")
    out = tmp_path / "out"
    assert run("restore", folder, "-o", out, "--weights", weights) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 4 and "Traceback" not in err
    assert any("unknown_codec.mkv: the video codec is not supported" in line for line in lines)
    assert any("garbage.mp4" in line and "cannot open" in line for line in lines)
    assert any("truncated.mp4" in line for line in lines)
    assert any("sound_only.m4a.mp4: no video stream" in line for line in lines)
    assert sorted(p.name for p in out.iterdir()) == ["fine.mp4", "photo.png"]


def test_output_that_would_replace_the_input_is_refused(tmp_path, weights, capsys):
    clip = make_clip(tmp_path / "clip.mp4", audio=False, pts=PTS[:2])
    before = clip.read_bytes()
    assert run("restore", clip, "-o", tmp_path, "--weights", weights, "--overwrite") == 1
    assert "would overwrite the input" in capsys.readouterr().err
    assert clip.read_bytes() == before


@pytest.mark.parametrize("temporal", [False, True])
def test_batches_of_frames_give_the_same_video(tmp_path, weights, temporal):
    """The GPU's path (several frames per forward pass) gives the frames of the CPU's (one)."""
    clip = make_clip(tmp_path / "clip.mp4", audio=False, rotation=0)
    for batch in ("1", "4"):
        # with the stabiliser too: its flow comes from the night input, which batching cannot change
        assert run("restore", clip, "-o", tmp_path / batch, "--weights", weights, "--video-codec", "ffv1",
                   "--video-batch", batch, *([] if temporal else ["--no-temporal"])) == 0
    one, four = (list(read_frames(tmp_path / b / "clip.mkv")) for b in ("1", "4"))
    assert len(one) == len(four) == len(PTS)
    for a, b in zip(one, four):
        assert np.abs(a.rgb.astype(int) - b.rgb.astype(int)).max() <= 1  # float sums differ by rounding only


def test_without_pyav_a_video_gets_one_line_and_photos_still_run(tmp_path, weights, monkeypatch, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    make_clip(folder / "clip.mp4", audio=False, pts=PTS[:2])
    Image.fromarray(np.full((16, 16, 3), 20, np.uint8)).save(folder / "photo.png")
    monkeypatch.setitem(__import__("sys").modules, "av", None)  # import av now raises ImportError
    assert run("restore", folder, "-o", tmp_path / "out", "--weights", weights) == 1
    err = capsys.readouterr().err
    assert "error: video needs PyAV and OpenCV: pip install 'vqcnir[video]'" in err and "Traceback" not in err
    assert (tmp_path / "out" / "photo.png").is_file()


def test_huge_frames_are_refused_before_decoding(tmp_path, weights, monkeypatch, capsys):
    clip = make_clip(tmp_path / "clip.mp4", audio=False, pts=PTS[:2])
    monkeypatch.setenv("VQCNIR_MAX_MEGAPIXELS", str(64 * 48 / 1e6 / 2))  # as if 64x48 were huge
    assert run("restore", clip, "-o", tmp_path / "out", "--weights", weights) == 1
    err = capsys.readouterr().err
    assert "refused before decoding" in err and "Traceback" not in err
