"""bf16 on a CPU without native bf16 falls back to fp32 with one clear line (restore and train).

The test machine has native bf16, so the CPU's answer is mocked both ways."""

import numpy as np
import pytest
import torch
from PIL import Image

import vqcnir.engine as engine
from vqcnir.cli import main


@pytest.mark.parametrize("torch_says, flags, native", [
    (False, {"avx2", "fma"}, False),                      # AVX2 only: oneDNN emulates bf16
    (True, {"avx512f", "avx512bw", "avx512vl"}, False),   # AVX-512 without BF16: still emulated
    (True, {"avx512f", "avx512_bf16"}, True),             # Cooper Lake, Zen 4
    (True, {"amx_tile", "amx_bf16"}, True),               # Sapphire Rapids
    (True, {"fp", "asimd", "bf16"}, True),                # Arm with the BF16 extension
    (True, None, True),                                   # flags unreadable: torch's word
])
def test_native_bf16_detection(monkeypatch, torch_says, flags, native):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: torch_says)
    monkeypatch.setattr(engine, "_cpu_flags", lambda: flags)
    assert engine.cpu_has_native_bf16() is native


def test_precision_falls_back_only_for_bf16_on_such_a_cpu(monkeypatch):
    monkeypatch.setattr(engine, "cpu_has_native_bf16", lambda: False)
    cpu = torch.device("cpu")
    precision, why = engine.effective_precision("bf16", cpu)
    assert precision == "fp32" and "no native bf16" in why
    assert engine.effective_precision("fp32", cpu) == ("fp32", "")
    monkeypatch.setattr(engine, "cpu_has_native_bf16", lambda: True)
    assert engine.effective_precision("bf16", cpu) == ("bf16", "")


@pytest.fixture
def restore_inputs(tmp_path, tiny_checkpoint):
    pixels = np.random.default_rng(0).integers(0, 80, (24, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    return tmp_path / "a.png", tiny_checkpoint


def _restore(tmp_path, photo, weights, name, *extra):
    assert main(["restore", str(photo), "-o", str(tmp_path / name), "--weights", str(weights),
                 "--device", "cpu", *extra]) == 0
    return np.asarray(Image.open(tmp_path / name / "a.png"))


def test_restore_warns_and_runs_fp32_without_native_bf16(tmp_path, restore_inputs, capsys, monkeypatch):
    photo, weights = restore_inputs
    fp32 = _restore(tmp_path, photo, weights, "fp32")
    monkeypatch.setattr(engine, "cpu_has_native_bf16", lambda: False)
    capsys.readouterr()
    fallback = _restore(tmp_path, photo, weights, "fallback", "--precision", "bf16")
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: --precision bf16: this CPU has no native bf16 (AVX-512 BF16 or AMX), "
                        "where bf16 runs 4-8x slower than fp32; using fp32"]
    assert np.array_equal(fallback, fp32)


def test_restore_keeps_bf16_with_native_bf16(tmp_path, restore_inputs, capsys, monkeypatch):
    photo, weights = restore_inputs
    fp32 = _restore(tmp_path, photo, weights, "fp32")
    monkeypatch.setattr(engine, "cpu_has_native_bf16", lambda: True)
    bf16 = _restore(tmp_path, photo, weights, "bf16", "--precision", "bf16")
    assert "warning:" not in capsys.readouterr().err
    assert not np.array_equal(bf16, fp32)  # bf16 really ran


def test_training_falls_back_too(tmp_path, monkeypatch):
    from vqcnir.train import load_config
    from vqcnir.train import Trainer

    monkeypatch.setattr(engine, "cpu_has_native_bf16", lambda: False)
    cfg = load_config("tiny-stage1", [f"experiments_root={tmp_path.as_posix()}", "train.precision=bf16",
                                      "data.crop=16", "val.crop=16", "val.num_images=2", "data.synth_length=8"])
    trainer = Trainer(cfg, device="cpu")
    try:
        assert trainer.precision == "fp32" and trainer.autocast_dtype is None
    finally:
        trainer.close()
    log = (tmp_path / "tiny-stage1" / "log.txt").read_text()
    assert "train.precision=bf16: this CPU has no native bf16" in log
