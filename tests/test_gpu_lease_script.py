"""scripts/gpu_lease.py: pack photos and stage 1 for a GPU machine, then a time-limited fine-tune
that exports fp16 weights (here on the CPU, with the tiny network)."""

import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import vqcnir
from vqcnir.train import load_config, run_training
from vqcnir.weights import convert


@pytest.fixture(scope="module")
def gpu_lease(load_script):
    return load_script("gpu_lease")


def test_pack_then_train_exports_loadable_fp16_weights(tmp_path, gpu_lease, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):  # smooth random photos, as PNG like the real corpus
        small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        Image.fromarray(small).resize((64, 48), Image.BILINEAR).save(photos / f"p{i}.png")
    runs = tmp_path / "runs"
    common = [f"experiments_root={runs.as_posix()}", "train.total_iter=1", "val.every=1", "val.num_images=1",
              "val.crop=16", "data.crop=16", "data.synth_length=8"]
    run_training(load_config("tiny-stage1", common), device="cpu")
    stage1 = runs / "tiny-stage1" / "models" / "net_g_1.pth"
    run_training(load_config("tiny-stage2", [*common, f"stage2.stage1_checkpoint={stage1.as_posix()}"]), device="cpu")
    restorer = runs / "tiny-stage2" / "models" / "net_g_1.pth"

    lease, out = tmp_path / "lease", tmp_path / "out"
    assert gpu_lease.main(["pack", "--photos", str(photos), "--stage1", str(stage1), "-o", str(lease),
                           "--max-side", "40"]) == 0
    assert sorted(p.name for p in (lease / "photos").iterdir()) == [f"p{i}.jpg" for i in range(4)]
    assert Image.open(lease / "photos" / "p0.jpg").size == (40, 30)  # shrunk for the trip, shape kept
    assert (lease / "stage1.safetensors").is_file()

    # a limit of 0 minutes: one iteration, then the state and the export
    assert gpu_lease.main(["train", str(lease), "--minutes", "0", "--out", str(out), "--preset", "tiny",
                           "--init-from", str(restorer), "--crop", "16", "--batch", "2", "--every", "1",
                           "--device", "cpu", "--opt", "data.kind=synth", "val.crop=16", "val.num_images=1",
                           "data.synth_length=8"]) == 0
    table = capsys.readouterr().out
    assert "| iterations | 1 (2 x 16²) |" in table and "| best validation | psnr " in table
    weights = out / "restorer-1.safetensors"
    from safetensors.torch import load_file

    assert all(v.dtype == torch.float16 for v in load_file(str(weights)).values() if v.is_floating_point())
    model = vqcnir.load_model(weights, device="cpu")
    assert model(torch.rand(1, 3, 16, 16)).shape == (1, 3, 16, 16)
    assert "started lease" in (out / "train-log.txt").read_text()


def test_snapshots_bring_back_the_last_saves_before_the_end(tmp_path, gpu_lease, capsys, monkeypatch):
    """--snapshots N exports the N saves before the last too; a safetensors --init-from brings its
    own network (here the tiny preset's, without DBCA), and --stage1 need not travel in the pack."""
    rng = np.random.default_rng(2)
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(photos / "p.png")
    runs = tmp_path / "runs"
    common = [f"experiments_root={runs.as_posix()}", "train.total_iter=1", "val.every=1", "val.crop=16",
              "data.crop=16", "data.synth_length=8"]
    run_training(load_config("tiny-stage1", common), device="cpu")
    stage1 = runs / "tiny-stage1" / "models" / "net_g_1.pth"
    run_training(load_config("tiny-stage2", [*common, f"stage2.stage1_checkpoint={stage1.as_posix()}",
                                             "model.use_dbca=false"]), device="cpu")
    init = tmp_path / "init.safetensors"
    convert(runs / "tiny-stage2" / "models" / "net_g_1.pth", init)
    lease, out = tmp_path / "lease", tmp_path / "out"
    assert gpu_lease.main(["pack", "--photos", str(photos), "-o", str(lease)]) == 0
    assert not (lease / "stage1.safetensors").exists()
    monkeypatch.setitem(sys.modules, "imagecodecs", None)  # a GPU machine without it: nothing may write PNG
    assert gpu_lease.main(["train", str(lease), "--minutes", "5", "--out", str(out), "--preset", "tiny",
                           "--init-from", str(init), "--stage1", str(stage1), "--crop", "16", "--batch", "2",
                           "--every", "1", "--snapshots", "2", "--device", "cpu",
                           "--opt", "train.total_iter=4", "val.crop=16", "val.num_images=1"]) == 0
    assert sorted(p.name for p in out.glob("*.safetensors")) == [f"restorer-{i}.safetensors" for i in (2, 3, 4)]
    assert not vqcnir.load_model(out / "restorer-2.safetensors", device="cpu").main_decode.dbca_levels


def test_a_fresh_restorer_validated_on_packed_pairs(tmp_path, gpu_lease, capsys):
    """--val packs the recipe search's fixed pairs; --fresh trains a restorer of another size."""
    rng = np.random.default_rng(1)
    photos, val = tmp_path / "photos", tmp_path / "val"
    photos.mkdir()
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(photos / f"p{i}.png")
    for side in ("low_blur_noise", "high_sharp_scaled"):
        (val / side / "a").mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)).save(val / side / "a" / f"{i}.png")
    runs = tmp_path / "runs"
    run_training(load_config("tiny-stage1", [f"experiments_root={runs.as_posix()}", "train.total_iter=1",
                                             "val.every=1", "val.crop=16", "data.crop=16", "data.synth_length=8"]),
                 device="cpu")
    lease, out = tmp_path / "lease", tmp_path / "out"
    assert gpu_lease.main(["pack", "--photos", str(photos), "--stage1",
                           str(runs / "tiny-stage1" / "models" / "net_g_1.pth"), "--val", str(val), "-o", str(lease)]) == 0
    assert len(list((lease / "val" / "high_sharp_scaled" / "a").iterdir())) == 3
    assert gpu_lease.main(["train", str(lease), "--minutes", "0", "--out", str(out), "--preset", "tiny", "--fresh",
                           "--crop", "16", "--batch", "2", "--every", "1", "--device", "cpu",
                           "--opt", "model.use_dbca=false", "data.synth_length=8"]) == 0
    table = capsys.readouterr().out
    assert "| validation | 3 fixed pairs |" in table and "| best validation | psnr " in table
    model = vqcnir.load_model(out / "restorer-1.safetensors", device="cpu")
    assert not model.main_decode.dbca_levels  # the size asked for, not the bundled one's
    assert gpu_lease.main(["pack", "--photos", str(photos), "--stage1", str(lease / "stage1.safetensors"),
                           "--val", str(photos), "-o", str(tmp_path / "lease2")]) == 2
    assert "has no low_blur_noise/ folder" in capsys.readouterr().err


def test_pack_refuses_a_missing_folder_in_one_line(tmp_path, gpu_lease, capsys):
    assert gpu_lease.main(["pack", "--photos", str(tmp_path / "nope"), "--stage1", "x.pth",
                           "-o", str(tmp_path / "lease")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: folder not found")


def test_continuing_the_bundled_restorer_builds_its_network(gpu_lease):
    """Without --init-from, train continues the bundled model: its network, not the preset's."""
    from safetensors import safe_open

    from vqcnir.nn import VQCNIRConfig
    from vqcnir.zoo import resolve_weights

    opts = gpu_lease._start_from(False, None)
    assert opts[0] == f"stage2.init_from={resolve_weights(None).as_posix()}"
    with safe_open(str(resolve_weights(None)), framework="pt") as f:
        bundled = VQCNIRConfig.from_dict(json.loads(f.metadata()["vqcnir_config"]))
    assert load_config("small-stage2", [*opts, "data.root=photos"]).model.network_config() == bundled
    assert gpu_lease._start_from(True, None) == []
