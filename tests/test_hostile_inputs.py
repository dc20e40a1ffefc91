"""Careless or hostile inputs end in one clear ``error:`` line, never a traceback or a huge allocation."""

import json
import os
import pickle

import pytest
import torch

from vqcnir.cli import main
from vqcnir.errors import VQCNIRError
from vqcnir.nn import VQCNIR, preset
from vqcnir.weights import CONFIG_KEY, load_model, read_checkpoint, save_checkpoint


def run(*args):
    return main([str(a) for a in args])


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err, err
    return err


@pytest.fixture
def tiny_state():
    torch.manual_seed(0)
    return VQCNIR(preset("tiny")).state_dict()


@pytest.fixture
def photo(tmp_path):
    from PIL import Image

    path = tmp_path / "night.png"
    Image.new("RGB", (16, 16), (20, 10, 5)).save(path)
    return path


def _safetensors_with_metadata(path, state, text):
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata={CONFIG_KEY: text})
    return path


# ---------------------------------------------------------------- item 5: config checked before building
def test_a_config_claiming_a_huge_network_is_refused_before_building(tmp_path, tiny_state, monkeypatch):
    path = tmp_path / "claims-4096.safetensors"
    _safetensors_with_metadata(path, tiny_state, json.dumps({**preset("tiny").to_dict(), "width": 4096,
                                                              "norm_groups": 32}))
    built = []
    monkeypatch.setattr(VQCNIR, "__init__", lambda self, *a, **k: built.append(a) or (_ for _ in ()).throw(
        AssertionError("a network was built")))
    with pytest.raises(VQCNIRError, match="width=4096 but the tensors hold 8"):
        load_model(path)
    assert not built


def test_a_config_that_disagrees_with_the_tensors_in_a_hidden_way_is_refused(tmp_path, tiny_state):
    # the shapes agree on width etc., but the AIEM count is claimed twice as large
    path = tmp_path / "more-aiem.pth"
    torch.save({"params": tiny_state, CONFIG_KEY: {**preset("tiny").to_dict(), "num_aiem": 4}}, path)
    with pytest.raises(VQCNIRError, match="num_aiem=4 but the tensors hold 2"):
        load_model(path)


# ---------------------------------------------------------------- item 6: malformed stored config
@pytest.mark.parametrize("text, says", [
    ('{"width": 8, "colour": 1}', "unknown model config keys: colour"),
    ("{not json", "not JSON"),
    ("[8, 32, 16]", "not a list"),
    ('{"width": "8"}', "width='8' is not of type int"),
    ('{"width": 8, "norm_groups": 3}', "not divisible by norm_groups=3"),
    ('{"width": 8, "norm_groups": 0}', "norm_groups must be at least 1"),
])
def test_malformed_safetensors_config_is_one_line(tmp_path, tiny_state, photo, capsys, text, says):
    weights = _safetensors_with_metadata(tmp_path / "bad.safetensors", tiny_state, text)
    assert run("restore", photo, "-o", tmp_path / "out", "--weights", weights) == 2
    assert says in one_error_line(capsys)


@pytest.mark.parametrize("config", [[1, 2], {"width": 8.5}, {"use_aiem": "yes"}])
def test_malformed_pth_config_is_one_line(tmp_path, tiny_state, capsys, config):
    weights = tmp_path / "bad.pth"
    torch.save({"params": tiny_state, CONFIG_KEY: config}, weights)
    assert run("convert", weights, tmp_path / "out.safetensors") == 2
    assert "metadata is malformed" in one_error_line(capsys)
    assert not (tmp_path / "out.safetensors").exists()


# ---------------------------------------------------------------- item 7: --memory-budget nan / inf
@pytest.mark.parametrize("budget", ["nan", "inf", "NaN", "0"])
def test_memory_budget_must_be_finite_and_positive(tmp_path, capsys, budget):
    assert run("restore", tmp_path / "x.png", "-o", tmp_path / "out", "--memory-budget", budget) == 2
    assert "--memory-budget must be a positive, finite number" in one_error_line(capsys)


# ---------------------------------------------------------------- item 8: train -c on binary junk
def test_train_config_that_is_not_text(tmp_path, capsys):
    junk = tmp_path / "config.yaml"
    junk.write_bytes(bytes(range(256)) * 4)
    assert run("train", "-c", junk) == 2
    assert "not a text file" in one_error_line(capsys)


# ---------------------------------------------------------------- item 12: smaller ones
def test_weights_given_a_folder_says_so(tmp_path, tiny_state, photo, capsys):
    save_checkpoint(tmp_path / "run" / "net_g.safetensors", tiny_state, preset("tiny"))
    assert run("restore", photo, "-o", tmp_path / "out", "--weights", tmp_path / "run") == 2
    err = one_error_line(capsys)
    assert "is a folder" in err and "net_g.safetensors" in err and "no such file" not in err


class _System:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


class _Eval:
    def __reduce__(self):
        return (eval, ("1 + 1",))


def _torch_save(obj, path):
    torch.save({"params": obj}, path)


def _pickle(protocol):
    def write(obj, path):
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=protocol)
    return write


@pytest.mark.parametrize("payload", [_System, _Eval])
@pytest.mark.parametrize("writer", [_torch_save, _pickle(0), _pickle(2), _pickle(4)],
                         ids=["torch.save", "protocol0", "protocol2", "protocol4"])
def test_every_malicious_pickle_is_called_pickled_code(tmp_path, payload, writer):
    path = tmp_path / "evil.pth"
    writer(payload(), path)
    with pytest.raises(VQCNIRError, match=r"holds pickled code or objects \((posix\.system|builtins\.eval|eval)"):
        read_checkpoint(path)


@pytest.mark.parametrize("content", [b"not a checkpoint", b"\x80\x02junk", bytes(range(200))])
def test_junk_is_still_called_damaged(tmp_path, content):
    path = tmp_path / "junk.pth"
    path.write_bytes(content)
    with pytest.raises(VQCNIRError, match="not a readable PyTorch checkpoint"):
        read_checkpoint(path)


def test_a_tile_overlap_beyond_half_the_tile_is_refused(tmp_path, capsys):
    # --tile 16 --tile-overlap 15 used to mean 16,385 passes for a 128x160 photo, without a word
    assert run("restore", tmp_path / "x.png", "-o", tmp_path / "out", "--tile", "16", "--tile-overlap", "15") == 2
    assert "half the tile size" in one_error_line(capsys)
