"""`vqcnir synth` / `vqcnir data photos`: LOL-Blur layout round trip, resume, determinism, CLI."""

import argparse
import json

import numpy as np
import pytest
from PIL import Image

from vqcnir.data import LOLBlurDataset
from vqcnir.data.cli import register
from vqcnir.errors import VQCNIRError

skdata = pytest.importorskip("skimage.data")


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="vqcnir")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


@pytest.fixture(scope="module")
def sharp_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("sharp")
    Image.fromarray(skdata.coffee()[100:196, 200:328]).save(d / "coffee.png")
    Image.fromarray(skdata.astronaut()[:96, :128]).save(d / "astronaut.png")
    (d / "sub").mkdir()
    Image.fromarray(skdata.chelsea()[50:146, 100:228]).save(d / "sub" / "cat.png")
    return d


def synth(sharp_dir, out, *extra):
    return run_cli("synth", str(sharp_dir), "-o", str(out), "--size", "48x32", "--seed", "7",
                   "--frames-per-video", "3", "--workers", "1", "-q", *extra)


def test_synth_output_reads_back_as_lolblur(sharp_dir, tmp_path):
    out = tmp_path / "out"
    assert synth(sharp_dir, out, "--pairs", "5", "--test-pairs", "2") == 0
    train = LOLBlurDataset(out, "train")
    test = LOLBlurDataset(out, "test")
    assert len(train) == 5 and len(test) == 2
    assert [name for *_, name in train.items] == ["0000/0000", "0000/0001", "0000/0002",
                                                   "0001/0000", "0001/0001"]
    item = train[0]
    assert item["night"].shape == item["gt"].shape == (3, 32, 48)
    assert item["night"].mean() < item["gt"].mean()
    record = json.loads((out / "train" / "synth_params.json").read_text())
    assert len(record["samples"]) == 5
    s = record["samples"][0]
    assert {"photo", "crop", "darken", "blur", "noise", "gt"} <= set(s)
    assert 0.05 <= s["darken"]["exposure"] <= 0.30
    # test pairs come from held-out photos only
    test_photos = {t["photo"] for t in json.loads(
        (out / "test" / "synth_params.json").read_text())["samples"]}
    train_photos = {t["photo"] for t in record["samples"]}
    assert test_photos.isdisjoint(train_photos)


def test_synth_resumes_and_guards_settings(sharp_dir, tmp_path):
    out = tmp_path / "out"
    synth(sharp_dir, out, "--pairs", "3")
    first = (out / "train" / "low_blur_noise" / "0000" / "0001.png").read_bytes()
    (out / "train" / "params" / "0000" / "0001.json").unlink()   # as if killed mid-sample
    from vqcnir.data.synth import SynthSettings, synthesize
    settings = SynthSettings(seed=7, size=(48, 32), frames_per_video=3)
    counts = synthesize(sharp_dir, out, pairs=4, settings=settings, workers=1, progress=False)
    assert counts == {"made": 2, "skipped": 2, "smaller": 0}
    assert (out / "train" / "low_blur_noise" / "0000" / "0001.png").read_bytes() == first
    with pytest.raises(VQCNIRError, match="other settings.*seed"):
        synth(sharp_dir, out, "--pairs", "3", "--seed", "8")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "mine.txt").write_text("keep me")
    with pytest.raises(VQCNIRError, match="not empty"):
        synth(sharp_dir, tmp_path / "other", "--pairs", "1")


def test_two_workers_give_the_same_files(sharp_dir, tmp_path):
    synth(sharp_dir, tmp_path / "one", "--pairs", "4")
    run_cli("synth", str(sharp_dir), "-o", str(tmp_path / "two"), "--size", "48x32", "--seed",
            "7", "--frames-per-video", "3", "--workers", "2", "-q", "--pairs", "4")
    for f in sorted((tmp_path / "one" / "train" / "low_blur_noise").rglob("*.png")):
        g = tmp_path / "two" / f.relative_to(tmp_path / "one")
        assert np.array_equal(np.asarray(Image.open(f)), np.asarray(Image.open(g)))


def test_synth_user_errors(sharp_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(VQCNIRError, match="no images"):
        synth(tmp_path / "empty", tmp_path / "o1", "--pairs", "1")
    with pytest.raises(VQCNIRError, match="not found"):
        synth(tmp_path / "nope", tmp_path / "o2", "--pairs", "1")
    (tmp_path / "cfg.yaml").write_text("blur:\n  lenght: [1, 3]\n")
    with pytest.raises(VQCNIRError, match="blur.lenght"):
        synth(sharp_dir, tmp_path / "o3", "--pairs", "1", "--config", str(tmp_path / "cfg.yaml"))
    with pytest.raises(SystemExit):
        synth(sharp_dir, tmp_path / "o4", "--pairs", "1", "--size", "big")


def test_photos_command_records_licences(tmp_path):
    assert run_cli("data", "photos", "-o", str(tmp_path / "p"), "--no-debian", "--max-side", "64",
                   "-q") == 0
    manifest = json.loads((tmp_path / "p" / "manifest.json").read_text())["photos"]
    assert len(manifest) == 6
    assert all(e["licence"] and e["author"] for e in manifest)
    assert {e["file"] for e in manifest} == {p.name for p in (tmp_path / "p").glob("*.png")}
    assert max(Image.open(tmp_path / "p" / manifest[0]["file"]).size) == 64
