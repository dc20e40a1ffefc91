"""The Gradio adapter of `vqcnir serve` (vqcnir.web.app) called as plain functions, tiny model."""

import gradio as gr
import numpy as np
import pytest
import torch

from vqcnir.api import load_model
from vqcnir.imagefiles import read_image, write_image
from vqcnir.nn import VQCNIR, preset
from vqcnir.web.app import API_NAME, accepted_upload_bytes, build_app, private_theme
from vqcnir.web.service import PhotoRestorer
from vqcnir.weights import save_checkpoint


@pytest.fixture
def handler(tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "tiny.safetensors"
    save_checkpoint(weights, VQCNIR(preset("tiny")).state_dict(), preset("tiny"))
    service = PhotoRestorer({"tiny": load_model(weights, device="cpu")}, tmp_path / "results")
    app = build_app(service)
    [fn] = [f for f in app.fns.values() if f.api_name == API_NAME]
    assert fn.preprocess is False and fn.concurrency_limit == 1
    return fn.fn


def test_handler_returns_previews_file_and_summary_and_reports_progress(handler, tmp_path):
    night = tmp_path / "night.png"
    write_image(night, np.full((24, 32, 3), 0.1, np.float32), bit_depth=16)
    calls = []
    (before, after), output, summary = handler({"path": str(night)}, "tiny", False, "fp32",
                                               progress=lambda value, **kw: calls.append(value))
    assert before.shape == after.shape == (24, 32, 3) and after.dtype == np.uint8
    assert read_image(output).bit_depth == 16 and "night.png: 32x24" in summary
    assert calls == [(0, None), (1, 1)]


def test_handler_turns_errors_into_a_page_message(handler, tmp_path):
    bad = tmp_path / "upload" / "bad.jpg"
    bad.parent.mkdir()
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(gr.Error) as caught:
        handler({"path": str(bad)}, "tiny", False, "fp32", progress=lambda *a, **k: None)
    assert caught.value.message.startswith("bad.jpg: cannot decode this JPEG file; it is truncated or corrupt")
    assert str(bad.parent) not in caught.value.message
    with pytest.raises(gr.Error, match="choose a photo first"):
        handler(None, "tiny", False, "fp32", progress=lambda *a, **k: None)


def test_theme_uses_only_system_fonts_and_upload_limit_follows_megapixels():
    import re

    urls = re.findall(r"url\(\s*['\"]?([^'\")]+)", private_theme()._get_theme_css())
    assert urls and all(url.startswith("data:") for url in urls)  # inline icons only: no font file, no font server
    assert accepted_upload_bytes(40) == 40 * 8 * 10**6 + 2**20
