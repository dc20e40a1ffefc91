"""The handlers behind `vqcnir serve` (vqcnir.web.service), without a web server: tiny model, small images."""

import threading
import time

import numpy as np
import pytest
import torch

from vqcnir.cli import main
from vqcnir.errors import VQCNIRError
from vqcnir.imagefiles import read_image, to_uint, write_image
from vqcnir.nn import VQCNIR, preset
from vqcnir.web import service as service_module
from vqcnir.web.service import PhotoRestorer, model_label
from vqcnir.weights import save_checkpoint


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors run fastest on one thread (and two threads crawl when the CPUs are shared)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_checkpoint(path, VQCNIR(preset("tiny")).state_dict(), preset("tiny"))
    return path


@pytest.fixture
def service(tiny_weights, tmp_path):
    from vqcnir.api import load_model

    return PhotoRestorer({"tiny": load_model(tiny_weights, device="cpu")}, tmp_path / "results")


def _photo(path, size=(48, 40), bit_depth=8, seed=0):
    rgb = np.random.default_rng(seed).uniform(0, 0.3, (size[1], size[0], 3)).astype(np.float32)
    write_image(path, rgb, bit_depth=bit_depth)
    return path


def _png_header_claiming(width, height):
    """A 45-byte PNG whose header claims a huge image (decoding it would need gigabytes)."""
    import zlib

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + len(ihdr).to_bytes(4, "big") + chunk + zlib.crc32(chunk).to_bytes(4, "big")


def test_restores_like_the_restore_command_in_the_input_format_and_bit_depth(service, tiny_weights, tmp_path):
    night = _photo(tmp_path / "in" / "night16.png", bit_depth=16)
    result = service.restore(night, "tiny")
    assert result.output.name == "night16-restored.png" and result.model == "tiny"
    assert "night16.png: 48x40" in result.summary and "16-bit PNG" in result.summary
    served = read_image(result.output)
    assert served.bit_depth == 16
    assert main(["restore", str(night), "-o", str(tmp_path / "cli"), "--weights", str(tiny_weights),
                 "--device", "cpu"]) == 0
    by_cli = read_image(tmp_path / "cli" / "night16.png")
    difference = np.abs(to_uint(served.rgb, 16).astype(int) - to_uint(by_cli.rgb, 16).astype(int))
    assert difference.max() <= 257  # one 8-bit level
    assert result.night_preview.dtype == np.uint8 and result.night_preview.shape == (40, 48, 3)
    assert result.restored_preview.shape == (40, 48, 3)
    np.testing.assert_array_equal(result.restored_preview, to_uint(served.rgb, 8))


def test_progress_counts_every_tile_pass(service, tmp_path):
    night = _photo(tmp_path / "wide.jpg", size=(200, 40))
    service.memory_budget = 2**20  # tiny budget: the engine tiles at its smallest tile size
    calls = []
    result = service.restore(night, "tiny", self_ensemble=True, progress=lambda done, total: calls.append((done, total)))
    total = calls[0][1]
    assert total > 8 and total % 8 == 0  # several tiles, for each of the 8 self-ensemble copies
    assert calls == [(i, total) for i in range(1, total + 1)]
    assert f"{total} passes" in result.summary and "self-ensemble" in result.summary
    assert read_image(result.output).bit_depth == 8 and result.output.suffix == ".jpg"


def test_previews_are_shrunk_but_the_download_is_full_size(service, tmp_path, monkeypatch):
    monkeypatch.setattr(service_module, "PREVIEW_SIDE", 24)
    result = service.restore(_photo(tmp_path / "p.png"), "tiny")
    assert result.night_preview.shape == (20, 24, 3) == result.restored_preview.shape
    assert read_image(result.output).rgb.shape[:2] == (40, 48)


@pytest.mark.parametrize("name, content, message", [
    ("notes.png", b"these are not pixels", "notes.png: not a JPEG, PNG, TIFF, WebP or BMP image"),
    ("notes.txt", b"hello", "notes.txt: not a supported image type (.txt)"),
    ("huge.png", _png_header_claiming(60_000, 60_000), "huge.png: the image is 60000x60000 pixels (3,600 MP), above the limit of 40 MP"),
])
def test_bad_uploads_get_one_readable_line(service, tmp_path, name, content, message):
    path = tmp_path / "upload-folder" / name
    path.parent.mkdir()
    path.write_bytes(content)
    with pytest.raises(VQCNIRError) as caught:
        service.restore(path, "tiny")
    assert str(caught.value).startswith(message)
    assert str(path.parent) not in str(caught.value)  # the server's folders stay private
    assert not service.work_dir.exists() or not any(service.work_dir.iterdir())


def test_truncated_and_too_small_photos_are_refused(service, tmp_path):
    whole = _photo(tmp_path / "whole.png", size=(64, 64)).read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(VQCNIRError, match=r"^cut.png: cannot decode this PNG file; it is truncated or corrupt"):
        service.restore(tmp_path / "cut.png", "tiny")
    write_image(tmp_path / "dot.png", np.zeros((1, 1, 3), np.float32))
    with pytest.raises(VQCNIRError, match=r"^dot.png: the image is only 1x1 pixels; at least 2x2 is needed"):
        service.restore(tmp_path / "dot.png", "tiny")


def test_megapixel_limit_is_configurable(tiny_weights, tmp_path):
    from vqcnir.api import load_model

    small = PhotoRestorer({"tiny": load_model(tiny_weights, device="cpu")}, tmp_path / "r", max_megapixels=0.001)
    with pytest.raises(VQCNIRError, match=r"the image is 48x40 pixels \(0.0019 MP\), above the limit of 0.001 MP"):
        small.restore(_photo(tmp_path / "p.png"), "tiny")
    with pytest.raises(VQCNIRError, match="must be positive"):
        PhotoRestorer(small.models, tmp_path, max_megapixels=0)


def test_unknown_model_and_unsupported_precision(service, tmp_path):
    night = _photo(tmp_path / "p.png")
    with pytest.raises(VQCNIRError, match="unknown model 'other'; this server has tiny"):
        service.restore(night, "other")
    assert service.precisions() == ["fp32", "bf16"]  # fp16 needs a GPU
    with pytest.raises(VQCNIRError, match="precision 'fp16' is not available here; choose fp32, bf16"):
        service.restore(night, "tiny", precision="fp16")


def test_one_restore_at_a_time_and_every_request_gets_its_result(service, tmp_path):
    model = service.models["tiny"]
    active, peak = [0], [0]
    original = model.forward

    def counting_forward(*args, **kwargs):
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        time.sleep(0.05)  # long enough for another thread to try
        try:
            return original(*args, **kwargs)
        finally:
            active[0] -= 1

    model.forward = counting_forward
    photos = [_photo(tmp_path / f"p{i}.png", seed=i) for i in range(5)]
    results = [None] * 5

    def client(i):
        results[i] = service.restore(photos[i], "tiny")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert peak[0] == 1
    assert [r.output.name for r in results] == [f"p{i}-restored.png" for i in range(5)]
    assert len({r.output.parent for r in results}) == 5  # each result in its own folder


def test_old_results_are_deleted(service, tmp_path, monkeypatch):
    first = service.restore(_photo(tmp_path / "a.png"), "tiny").output
    monkeypatch.setattr(service_module, "KEEP_RESULTS_SECONDS", -1)
    second = service.restore(_photo(tmp_path / "b.png"), "tiny").output
    assert not first.exists() and second.exists()


def test_models_from_weights_first_given_first_then_the_bundled_default(tiny_weights, tmp_path):
    service = PhotoRestorer.from_weights([str(tiny_weights)], tmp_path, device="cpu")
    assert service.model_names == ["tiny.safetensors", "default"]
    assert model_label("default") == "default" and model_label("some/dir/x.pth") == "x.pth"
    copy = tmp_path / "other" / "tiny.safetensors"
    copy.parent.mkdir()
    copy.write_bytes(tiny_weights.read_bytes())
    with pytest.raises(VQCNIRError, match="two models would both be called 'tiny.safetensors'"):
        PhotoRestorer.from_weights([str(tiny_weights), str(copy)], tmp_path, device="cpu")


def test_serve_without_gradio_says_how_to_install_it(monkeypatch, capsys):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gradio" else find_spec(name, *a))
    assert main(["serve"]) == 2
    assert capsys.readouterr().err == 'error: vqcnir serve needs the web extra: pip install "vqcnir[web]"\n'


@pytest.mark.parametrize("args, message", [
    (["--port", "70000"], "error: --port 70000: use a port number from 0 to 65535\n"),
    (["--memory-budget", "0"], "error: --memory-budget must be positive\n"),
    (["--weights", "no/such.pth"], "error: --weights no/such.pth: no such file, and not a model name"),
])
def test_serve_refuses_bad_arguments_in_one_line(args, message, capsys):
    assert main(["serve", *args]) == 2
    assert capsys.readouterr().err.startswith(message)
