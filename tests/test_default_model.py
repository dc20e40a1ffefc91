"""The bundled default model ships with the package, loads, and restores the sample night photos."""

import json
from pathlib import Path

import pytest
import torch

import vqcnir
from vqcnir import metrics
from vqcnir.cli import main
from vqcnir.imagefiles import read_image
from vqcnir.metrics import psnr, ssim
from vqcnir.nn import VQCNIRConfig, preset
from vqcnir.zoo import MODELS, resolve_weights

SAMPLES = Path(__file__).parents[1] / "samples"
NAMES = sorted(p.name for p in (SAMPLES / "night").glob("*.png"))

# Measured with the bundled weights (MODEL_CARD.md, "Bundled samples"): mean PSNR 20.75 dB
# against ground truth, from 12.47 dB for the night inputs; SSIM rises on every sample, by 0.197
# to 0.444; mean blockiness8 1.00 (the previous default's 1.13, the first default's 1.69). The
# bounds leave room for other CPUs and library versions, not for a worse model.
MEAN_PSNR_FLOOR = 20.2
MEAN_GAIN_FLOOR = 7.7
SSIM_GAIN_FLOOR_EACH = 0.16
MEAN_BLOCKINESS8_CEILING = 1.05


def _tensor(path: Path) -> torch.Tensor:
    return torch.from_numpy(read_image(path).rgb).permute(2, 0, 1)[None]


@pytest.fixture(scope="module")
def default_model():
    return vqcnir.load_model(device="cpu")


def test_bundled_file_is_a_small_safetensors_with_its_presets_config():
    from safetensors import safe_open

    path = resolve_weights(None)
    assert path.name == MODELS["default"].filename and path.suffix == ".safetensors"
    assert path.stat().st_size <= 25 * 2**20
    with safe_open(str(path), framework="pt") as f:
        stored = json.loads(f.metadata()["vqcnir_config"])
    # a config saved before a field existed (quant_scale) means that field's default
    assert VQCNIRConfig.from_dict(stored) == preset(MODELS["default"].preset)


def test_default_model_restores_every_sample_above_the_floor(default_model):
    gains, scores, ssim_gains, grids = [], [], [], []
    for name in NAMES:
        night, gt = _tensor(SAMPLES / "night" / name), _tensor(SAMPLES / "gt" / name)
        restored = vqcnir.restore(default_model, night).clamp(0, 1)
        assert restored.shape == night.shape
        score = float(psnr(restored, gt))
        scores.append(score)
        gains.append(score - float(psnr(night, gt)))
        ssim_gains.append(float(ssim(restored, gt)) - float(ssim(night, gt)))
        grids.append(float(metrics.compute("blockiness8", restored)[0]))
    assert sum(scores) / len(scores) >= MEAN_PSNR_FLOOR, dict(zip(NAMES, scores))
    assert sum(gains) / len(gains) >= MEAN_GAIN_FLOOR, dict(zip(NAMES, gains))
    assert min(ssim_gains) >= SSIM_GAIN_FLOOR_EACH, dict(zip(NAMES, ssim_gains))
    assert sum(grids) / len(grids) <= MEAN_BLOCKINESS8_CEILING, dict(zip(NAMES, grids))  # no mosaic


# Measured on chelsea.png (MODEL_CARD.md, "Self-ensemble"): 25.27 dB -> 25.44 dB.
SELF_ENSEMBLE_GAIN_FLOOR = 0.1


def test_self_ensemble_raises_the_default_models_psnr(default_model):
    night, gt = _tensor(SAMPLES / "night" / "chelsea.png"), _tensor(SAMPLES / "gt" / "chelsea.png")
    single = float(psnr(vqcnir.restore(default_model, night).clamp(0, 1), gt))
    ensemble = float(psnr(vqcnir.restore(default_model, night, self_ensemble=True).clamp(0, 1), gt))
    assert ensemble - single >= SELF_ENSEMBLE_GAIN_FLOOR, (single, ensemble)


def test_restore_without_weights_uses_the_default_model(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["restore", str(SAMPLES / "night" / NAMES[0]), "-o", str(out)]) == 0
    assert (out / NAMES[0]).is_file()
    assert "restored 1" in capsys.readouterr().out
