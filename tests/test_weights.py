"""Checkpoint formats, safe loading, clear errors for checkpoints that do not fit."""

import collections

import pytest
import torch

from vqcnir.errors import VQCNIRError
from vqcnir.nn import VQCNIR, VQGAN, preset
from vqcnir.weights import convert, infer_config, load_network, read_checkpoint, save_checkpoint


@pytest.fixture
def tiny_state():
    torch.manual_seed(0)
    return VQCNIR(preset("tiny")).state_dict()


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("layout", ["params", "params_ema", "bare"])
def test_official_pth_layouts_load(tmp_path, tiny_state, layout):
    path = tmp_path / "model.pth"
    torch.save(tiny_state if layout == "bare" else {layout: tiny_state}, path)
    model = load_network(path, config=preset("tiny"))
    assert _same(model.state_dict(), tiny_state)
    assert not model.training


def test_params_ema_is_preferred_over_params(tmp_path, tiny_state):
    other = {k: torch.zeros_like(v) for k, v in tiny_state.items()}
    torch.save({"params": other, "params_ema": tiny_state}, tmp_path / "m.pth")
    state, _ = read_checkpoint(tmp_path / "m.pth")
    assert _same(state, tiny_state)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_our_checkpoints_carry_their_config(tmp_path, tiny_state, suffix):
    path = tmp_path / f"tiny{suffix}"
    save_checkpoint(path, tiny_state, preset("tiny"))
    model = load_network(path)  # no config given: read from the file
    assert model.config == preset("tiny")
    assert _same(model.state_dict(), tiny_state)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary files left


def test_convert_round_trip(tmp_path, tiny_state):
    save_checkpoint(tmp_path / "a.pth", tiny_state, preset("tiny"))
    convert(tmp_path / "a.pth", tmp_path / "b.safetensors")
    convert(tmp_path / "b.safetensors", tmp_path / "c.pth")
    assert _same(read_checkpoint(tmp_path / "c.pth")[0], tiny_state)
    assert "params" in torch.load(tmp_path / "c.pth", weights_only=True)  # the official layout
    with pytest.raises(VQCNIRError, match="already exists"):
        convert(tmp_path / "a.pth", tmp_path / "c.pth")


def test_paper_config_is_inferred_from_official_keys():
    state = VQCNIR().state_dict()
    assert infer_config(state) == preset("paper")


def test_stage1_checkpoint_given_to_the_restorer(tmp_path):
    torch.save({"params": VQGAN(preset("tiny")).state_dict()}, tmp_path / "stage1.pth")
    with pytest.raises(VQCNIRError, match="stage-1"):
        load_network(tmp_path / "stage1.pth", config=preset("tiny"))


def test_mismatch_names_the_first_keys(tmp_path, tiny_state):
    broken = collections.OrderedDict(tiny_state)
    del broken["out_conv.bias"]
    broken["extra.weight"] = torch.zeros(1)
    broken["out_conv.weight"] = torch.zeros(3, 8, 5, 5)
    torch.save({"params": broken}, tmp_path / "broken.pth")
    with pytest.raises(VQCNIRError) as err:
        load_network(tmp_path / "broken.pth", config=preset("tiny"))
    message = str(err.value)
    assert "out_conv.bias" in message and "extra.weight" in message and "out_conv.weight" in message
    assert "\n" not in message


class NotATensor:
    pass


def test_arbitrary_pickles_are_refused(tmp_path):
    torch.save({"params": {"x": torch.zeros(1)}, "payload": NotATensor()}, tmp_path / "evil.pth")
    with pytest.raises(VQCNIRError, match="refusing to load"):
        read_checkpoint(tmp_path / "evil.pth")


@pytest.mark.parametrize("name,content,match", [
    ("missing.pth", None, "not found"),
    ("junk.pth", b"not a checkpoint", "not a readable PyTorch checkpoint"),
    ("junk.safetensors", b"\x00\x01garbage", "not a readable safetensors"),
    ("model.onnx", b"", "unknown checkpoint format"),
])
def test_bad_checkpoint_files(tmp_path, name, content, match):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(VQCNIRError, match=match):
        read_checkpoint(path)


def test_saved_checkpoint_has_ordinary_permissions(tmp_path):
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    path = tmp_path / "w.safetensors"
    save_checkpoint(path, {"x": torch.zeros(2)}, None)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
