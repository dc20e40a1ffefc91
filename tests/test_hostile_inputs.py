"""Careless or hostile inputs end in one clear ``error:`` line, never a traceback or a huge allocation."""

import json
import os
import pickle

import pytest
import torch

from vqcnir.cli import main
from vqcnir.errors import VQCNIRError
from vqcnir.nn import VQCNIR, preset
from vqcnir.weights import CONFIG_KEY, load_network, read_checkpoint, save_checkpoint


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
        load_network(path)
    assert not built


def test_a_config_that_disagrees_with_the_tensors_in_a_hidden_way_is_refused(tmp_path, tiny_state):
    # the shapes agree on width etc., but the AIEM count is claimed twice as large
    path = tmp_path / "more-aiem.pth"
    torch.save({"params": tiny_state, CONFIG_KEY: {**preset("tiny").to_dict(), "num_aiem": 4}}, path)
    with pytest.raises(VQCNIRError, match="num_aiem=4 but the tensors hold 2"):
        load_network(path)


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


# ---------------------------------------------------------------- item 4: decompression bombs
def _png_bomb(path, side=30000):
    """A valid grey PNG of side x side black pixels in under 1 MB: one compressed 30 MB run of
    zeros, repeated (a full flush makes each copy an independent, byte-aligned deflate block)."""
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows_per_part = 1000
    part = bytes((side + 1) * rows_per_part)  # filter byte 0 + zeros, per row
    packer = zlib.compressobj(9)
    block = packer.compress(part) + packer.flush(zlib.Z_FULL_FLUSH)
    checksum = (len(part) * (side // rows_per_part) % 65521) << 16 | 1  # Adler-32 of that many zeros
    stream = block + block[2:] * (side // rows_per_part - 1) + b"\x03\x00" + struct.pack(">I", checksum)
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", stream) + chunk(b"IEND", b""))
    return path


def _tiff_bomb(path, side=30000, tile=512):
    """A tiled zlib TIFF of side x side black pixels in about 1 MB (one compressed tile, repeated)."""
    import zlib

    import tifffile

    encoded = zlib.compress(bytes(tile * tile))
    count = (-(-side // tile)) ** 2
    tifffile.imwrite(path, data=(encoded for _ in range(count)), shape=(side, side), dtype="uint8",
                     tile=(tile, tile), compression="zlib", photometric="minisblack")
    return path


@pytest.fixture
def no_decoding(monkeypatch):
    """Make any pixel decoding fail loudly: a refusal must come from the header alone."""
    import imagecodecs
    import tifffile

    def refuse(*args, **kwargs):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(imagecodecs, "png_decode", refuse)
    monkeypatch.setattr(tifffile.TiffPage, "asarray", refuse)


@pytest.mark.parametrize("make, name", [(_png_bomb, "bomb.png"), (_tiff_bomb, "bomb.tif")])
def test_bombs_are_refused_from_the_header(tmp_path, tiny_checkpoint, no_decoding, capsys, make, name):
    bomb = make(tmp_path / name)
    assert bomb.stat().st_size < 3 * 2**20
    assert run("restore", bomb, "-o", tmp_path / "out", "--weights", tiny_checkpoint) == 1
    err = one_error_line(capsys)
    assert "30000x30000 pixels (900 MP)" in err and "--max-megapixels 900" in err


def test_the_png_bomb_is_a_real_png(tmp_path):
    import imagecodecs

    # the same construction at 3000 x 3000 decodes to 9 MP of zeros
    pixels = imagecodecs.png_decode(_png_bomb(tmp_path / "small.png", side=3000).read_bytes())
    assert pixels.shape == (3000, 3000) and not pixels.any()


@pytest.mark.parametrize("suffix", [".png", ".tif", ".jpg", ".webp", ".bmp"])
def test_the_pixel_limit_applies_to_every_format_and_is_configurable(tmp_path, suffix, monkeypatch):
    from PIL import Image

    from vqcnir.imagefiles import read_image

    path = tmp_path / f"photo{suffix}"
    Image.new("RGB", (2000, 1500)).save(path)  # 3 MP
    with pytest.raises(VQCNIRError, match=r"2000x1500 pixels \(3 MP\), above the limit of 2\.5 MP"):
        read_image(path, max_megapixels=2.5)
    assert read_image(path, max_megapixels=3.1).width == 2000
    monkeypatch.setenv("VQCNIR_MAX_MEGAPIXELS", "2")
    with pytest.raises(VQCNIRError, match="above the limit of 2 MP"):
        read_image(path)
    monkeypatch.setenv("VQCNIR_MAX_MEGAPIXELS", "lots")
    with pytest.raises(VQCNIRError, match="VQCNIR_MAX_MEGAPIXELS must be a positive"):
        read_image(path)


def test_restore_takes_max_megapixels(tmp_path, tiny_checkpoint, capsys):
    from PIL import Image

    weights = tiny_checkpoint
    Image.new("RGB", (40, 30)).save(tmp_path / "small.png")
    assert run("restore", tmp_path / "small.png", "-o", tmp_path / "out", "--weights", weights,
               "--max-megapixels", "0.001") == 1
    assert "40x30 pixels (0.0012 MP)" in one_error_line(capsys)
    assert run("restore", tmp_path / "small.png", "-o", tmp_path / "out", "--weights", weights,
               "--max-megapixels", "nan") == 2


# ---------------------------------------------------------------- item 12: synth frame sizes, leftovers
@pytest.fixture
def sharp(tmp_path):
    import numpy as np
    from PIL import Image

    folder = tmp_path / "sharp"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, (w, h) in {"wide.png": (96, 64), "small.png": (40, 30)}.items():
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(folder / name)
    return folder


def test_synth_refuses_a_frame_size_no_photo_can_have(tmp_path, sharp, capsys):
    assert run("synth", sharp, "-o", tmp_path / "out", "--size", "100000x100000", "--pairs", "1") == 2
    assert "larger than any photo synth reads" in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_synth_says_when_frames_are_smaller_than_asked(tmp_path, sharp, capsys):
    assert run("synth", sharp, "-o", tmp_path / "out", "--size", "64x48", "--pairs", "6",
               "--workers", "1", "-q", "--seed", "3") == 0
    from vqcnir.data import LOLBlurDataset

    train = LOLBlurDataset(tmp_path / "out", "train")
    small = sum(train[i]["gt"].shape[-1] < 64 for i in range(len(train)))
    assert small > 0  # the 40x30 photo was drawn at least once with this seed
    assert f"warning: {small} of the 6 frames written are smaller than 64x48" in capsys.readouterr().err


def test_synth_resume_removes_temporaries_of_a_killed_run(tmp_path, sharp):
    import subprocess
    import sys

    out = tmp_path / "out"
    assert run("synth", sharp, "-o", out, "--size", "32x24", "--pairs", "1", "--workers", "1", "-q") == 0
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    leftover = out / "train" / "low_blur_noise" / f".0000.png.{gone.pid}-0badc0de.tmp"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"partial")
    assert run("synth", sharp, "-o", out, "--size", "32x24", "--pairs", "2", "--workers", "1", "-q") == 0
    assert not leftover.exists()
