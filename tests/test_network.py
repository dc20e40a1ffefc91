"""The network: key-for-key compatibility with the release and numerical parity with its outputs."""

import numpy as np
import pytest
import torch
from torchvision.ops import deform_conv2d

from parity_weights import FIXTURES, official_manifest
from vqcnir.engine import forward_padded
from vqcnir.nn import VQCNIR, VQGAN, VQCNIRConfig, preset
from vqcnir.nn.aiem import AIEM
from vqcnir.nn.deform import _deform_conv3x3_cpu, deform_conv3x3

PARITY_TOLERANCE = 5e-5


def test_state_dict_matches_official_manifest_key_for_key():
    state = VQCNIR().state_dict()
    manifest = official_manifest()
    assert [k for k, _ in manifest] == list(state)
    assert [shape for _, shape in manifest] == [tuple(v.shape) for v in state.values()]
    assert all(v.dtype == torch.float32 for v in state.values())
    assert sum(v.numel() for v in state.values()) == 47_854_222


def _fixture_input(case):
    x = np.load(FIXTURES / "parity" / f"case_{case}_input_u8.npy")
    return torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255


@pytest.mark.parametrize("case", ["a", "b"])
def test_raw_forward_matches_release(paper_model_with_fixture_weights, case):
    with torch.inference_mode():
        y = paper_model_with_fixture_weights(_fixture_input(case))[0].numpy()
    ref = np.load(FIXTURES / "parity" / f"case_{case}_forward_f32.npy")
    assert y.shape == ref.shape
    assert np.abs(y - ref).max() < PARITY_TOLERANCE


@pytest.mark.parametrize("case", ["a", "b"])
def test_release_restore_path_matches_release(paper_model_with_fixture_weights, case):
    with torch.inference_mode():
        y = forward_padded(paper_model_with_fixture_weights, _fixture_input(case), "release")[0].numpy()
    ref = np.load(FIXTURES / "parity" / f"case_{case}_restored_f32.npy")
    assert y.shape == ref.shape
    assert np.abs(y - ref).max() < PARITY_TOLERANCE


def test_parity_detects_a_wrong_layer(paper_model_with_fixture_weights):
    """Guard against a tolerance so loose it cannot fail: a 1.5x DBCA residual scale must show."""
    model = paper_model_with_fixture_weights
    beta = model.main_decode.attn["Level_4"].beta
    saved = beta.detach().clone()
    try:
        with torch.no_grad():
            beta.mul_(1.5)
        with torch.inference_mode():
            y = model(_fixture_input("b"))[0].numpy()
    finally:
        with torch.no_grad():
            beta.copy_(saved)
    ref = np.load(FIXTURES / "parity" / "case_b_forward_f32.npy")
    assert np.abs(y - ref).max() > 10 * PARITY_TOLERANCE


def test_aiem_is_identity_at_initialisation():
    torch.manual_seed(0)
    block = AIEM(32, splits=4, curves=3)
    x = torch.randn(2, 32, 8, 8)
    assert torch.equal(block(x), x)


@pytest.mark.parametrize("size", [(16, 16), (24, 40), (64, 8)])
def test_tiny_forward_keeps_size(tiny_model, size):
    x = torch.rand(1, 3, *size)
    with torch.inference_mode():
        assert tiny_model(x).shape == (1, 3, *size)


@pytest.mark.parametrize("use_aiem,use_dbca", [(False, True), (True, False), (False, False)])
def test_ablation_switches_build_and_run(use_aiem, use_dbca):
    cfg = preset("tiny").with_(use_aiem=use_aiem, use_dbca=use_dbca)
    model = VQCNIR(cfg)
    keys = list(model.state_dict())
    assert any(k.startswith("multiscale_encoder.blocks.3.") for k in keys) == use_aiem
    assert any(k.startswith("main_decode.attn.") for k in keys) == use_dbca
    y, loss, idx = model.forward_train(torch.rand(2, 3, 16, 16))
    assert y.shape == (2, 3, 16, 16) and torch.isfinite(loss) and idx.shape == (2, 1, 2, 2)


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_dbca_at_the_coarsest_levels_only(levels, tmp_path):
    from vqcnir.nn.vqcnir import LEVELS
    from vqcnir.weights import load_network, save_checkpoint

    cfg = preset("tiny").with_(dbca_levels=levels)
    state = VQCNIR(cfg).state_dict()
    assert {k.split(".")[2] for k in state if k.startswith("main_decode.attn.")} == set(LEVELS[:levels])
    assert {k.split(".")[2] for k in state if k.startswith("main_decode.align_func_dict.")} == set(LEVELS[:levels])
    full = VQCNIR(preset("tiny")).state_dict()  # every other tensor as in the full network
    assert all(full[k].shape == v.shape for k, v in state.items())
    y, loss, idx = VQCNIR(cfg).forward_train(torch.rand(2, 3, 16, 16))
    assert y.shape == (2, 3, 16, 16) and torch.isfinite(loss)
    for stored in (cfg, None):  # the config stored, or read off the tensors
        save_checkpoint(tmp_path / "w.pth", state, stored)
        assert load_network(tmp_path / "w.pth").main_decode.dbca_levels == LEVELS[:levels]
    with pytest.raises(ValueError, match="dbca_levels=5 exceeds"):
        preset("tiny").with_(dbca_levels=5)


def test_bilinear_upsampling_keeps_the_keys_and_is_stored_with_the_weights(tmp_path):
    from vqcnir.weights import load_network, save_checkpoint

    nearest, bilinear = preset("tiny"), preset("tiny").with_(upsample="bilinear")
    a, b = VQCNIR(nearest).eval(), VQCNIR(bilinear).eval()
    state = a.state_dict()
    assert {k: v.shape for k, v in b.state_dict().items()} == {k: v.shape for k, v in state.items()}
    b.load_state_dict(state)
    modes = [m.mode for m in b.modules() if isinstance(m, torch.nn.Upsample)]
    assert modes == ["bilinear"] * 6  # G's three steps and D's three
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert (a(x) - b(x)).abs().max() > 1e-4  # the same weights, another network
    save_checkpoint(tmp_path / "w.pth", state, bilinear)
    with torch.no_grad():
        torch.testing.assert_close(load_network(tmp_path / "w.pth").eval()(x), b(x))
    assert VQCNIRConfig.from_dict(bilinear.to_dict()) == bilinear
    with pytest.raises(ValueError, match="upsample='bicubic' is not one of nearest, bilinear"):
        preset("tiny").with_(upsample="bicubic")
    with pytest.raises(TypeError, match="upsample=2 is not of type str"):
        VQCNIRConfig.from_dict({"upsample": 2})


def test_encoder_skips_start_as_the_paper_network_then_carry_fine_detail(tmp_path):
    from vqcnir.weights import infer_config, load_network, save_checkpoint

    torch.manual_seed(0)
    plain, skips = preset("tiny"), preset("tiny").with_(encoder_skips=True)
    a, b = VQCNIR(plain).eval(), VQCNIR(skips).eval()
    extra = sorted(set(b.state_dict()) - set(a.state_dict()))
    assert extra == [f"main_decode.skip_dict.{level}.{p}" for level in ("Level_1", "Level_2", "Level_4")
                     for p in ("bias", "weight")]
    assert not set(a.state_dict()) - set(b.state_dict())
    b.load_state_dict(a.state_dict(), strict=False)
    x = torch.rand(1, 3, 40, 24)  # not square: the full-scale skip's padding must fit both sides
    with torch.no_grad():
        torch.testing.assert_close(b(x), a(x))  # zero-initialised: a fresh run starts as the paper's
    # trained, the skips pass what the 1/8-scale codes cannot: a one-pixel change of the input
    # moves the output at that pixel more than with the skips off
    for conv in b.main_decode.skip_dict.values():
        torch.nn.init.normal_(conv.weight, std=0.3)
    poked = x.clone()
    poked[..., 17, 9] += 0.5
    with torch.no_grad():
        moved_a = (a(poked) - a(x))[..., 17, 9].abs().sum()
        moved_b = (b(poked) - b(x))[..., 17, 9].abs().sum()
    assert moved_b > moved_a
    state = b.state_dict()
    assert infer_config(state).encoder_skips and not infer_config(a.state_dict()).encoder_skips
    save_checkpoint(tmp_path / "w.pth", state, skips)
    with torch.no_grad():
        torch.testing.assert_close(load_network(tmp_path / "w.pth").eval()(x), b(x))


def test_stage2_training_step_flows_gradients_everywhere_trainable():
    torch.manual_seed(0)
    cfg = preset("tiny")
    stage1 = VQGAN(cfg)
    gt = torch.rand(2, 3, 16, 16)
    gt_idx = stage1.code_indices(gt)
    model = VQCNIR(cfg)
    y, code_loss, _ = model.forward_train(gt * 0.2, gt_idx)
    (torch.nn.functional.l1_loss(y, gt) + code_loss).backward()
    dcn = model.main_decode.align_func_dict["Level_1"].dcn
    assert dcn.weight.grad is not None and dcn.weight.grad.abs().sum() > 0
    assert model.multiscale_encoder.in_conv.weight.grad.abs().sum() > 0
    # zero-initialised skips still learn: their weights' gradients do not vanish
    model = VQCNIR(cfg.with_(encoder_skips=True))
    y, code_loss, _ = model.forward_train(gt * 0.2, gt_idx)
    (torch.nn.functional.l1_loss(y, gt) + code_loss).backward()
    assert all(conv.weight.grad.abs().sum() > 0 for conv in model.main_decode.skip_dict.values())


def test_stage1_codebook_loss_and_indices():
    torch.manual_seed(0)
    model = VQGAN(preset("tiny"))
    y, loss, idx = model.forward_train(torch.rand(1, 3, 32, 32))
    assert y.shape == (1, 3, 32, 32) and loss.item() > 0
    assert idx.min() >= 0 and idx.max() < preset("tiny").codebook_size


def test_quantizer_picks_the_nearest_codeword():
    model = VQGAN(preset("tiny"))
    q = model.quantizer
    z = q.embedding.weight[[3, 7, 7, 0]].t().reshape(1, q.code_dim, 2, 2) + 1e-6
    assert q.nearest_indices(z).flatten().tolist() == [3, 7, 7, 0]


@pytest.mark.parametrize("shape", [(1, 16, 9, 11), (2, 32, 12, 7)])
def test_cpu_deformable_conv_equals_torchvision(shape):
    torch.manual_seed(1)
    b, c, h, w = shape
    x = torch.randn(shape)
    offset = torch.randn(b, 2 * 4 * 9, h, w) * 3  # many taps fall outside the image
    offset[:, :, 0, 0] = -1.0  # a tap exactly one pixel outside reads zero
    mask = torch.rand(b, 4 * 9, h, w)
    weight = torch.randn(c, c, 3, 3) / c
    bias = torch.randn(c)
    ours = _deform_conv3x3_cpu(x, offset, mask, weight, bias)
    ref = deform_conv2d(x, offset, weight, bias, padding=1, mask=mask)
    assert (ours - ref).abs().max() < 1e-5
    with torch.inference_mode():
        assert (deform_conv3x3(x, offset, mask, weight, bias) - ref).abs().max() < 1e-5


def test_config_rejects_widths_that_do_not_divide():
    with pytest.raises(ValueError, match="norm_groups"):
        VQCNIRConfig(width=12, norm_groups=8)
    with pytest.raises(ValueError, match="unknown model config keys: widht"):
        VQCNIRConfig.from_dict({"widht": 8})


def test_cpu_inference_layout_keeps_parity(paper_model_with_fixture_weights):
    """The engine runs CPU models channels-last; that must stay within the parity tolerance."""
    import copy

    from vqcnir.engine import RestoreOptions, prepare_for_inference, restore_tensor

    model = prepare_for_inference(copy.deepcopy(paper_model_with_fixture_weights), torch.device("cpu"))
    y = restore_tensor(model, _fixture_input("a"), RestoreOptions(tile=0))[0].numpy()
    ref = np.load(FIXTURES / "parity" / "case_a_restored_f32.npy")
    assert np.abs(y - ref).max() < PARITY_TOLERANCE


@pytest.mark.parametrize("shape", [(1, 8, 9, 9), (2, 8, 10, 7), (1, 8, 2, 3)])
def test_dilated_depthwise_by_phases_equals_the_dilated_conv(shape):
    from vqcnir.nn.blocks import dilated_depthwise_by_phases

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(8, 8, 7, padding=9, dilation=3, groups=8)
    x = torch.randn(shape)
    assert (dilated_depthwise_by_phases(x, conv) - conv(x)).abs().max() < 1e-5


def test_cpu_deformable_conv_gradients_equal_torchvision():
    torch.manual_seed(2)
    b, c, h, w = 1, 8, 6, 7
    inputs = [torch.randn(b, c, h, w), torch.randn(b, 72, h, w) * 2, torch.rand(b, 36, h, w),
              torch.randn(c, c, 3, 3) / c, torch.randn(c)]
    ours = [t.clone().requires_grad_() for t in inputs]
    ref = [t.clone().requires_grad_() for t in inputs]
    _deform_conv3x3_cpu(*ours).square().sum().backward()
    x, off, m, wt, bias = ref
    deform_conv2d(x, off, wt, bias, padding=1, mask=m).square().sum().backward()
    for a, r in zip(ours, ref):
        assert (a.grad - r.grad).abs().max() < 1e-3 * (1 + r.grad.abs().max())


def test_stage2_trains_under_cpu_bf16_autocast():
    torch.manual_seed(0)
    model = VQCNIR(preset("tiny"))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, code_loss, _ = model.forward_train(torch.rand(1, 3, 16, 16))
    (y.float().abs().mean() + code_loss).backward()
    assert torch.isfinite(model.main_decode.align_func_dict["Level_1"].dcn.weight.grad).all()


@pytest.mark.parametrize("use_dbca", [True, False])
def test_codebook_at_quarter_scale_keeps_the_keys_and_quadruples_the_codes(use_dbca):
    base = preset("tiny").with_(use_dbca=use_dbca)
    quarter = base.with_(quant_scale=4)
    eighth_net, quarter_net = VQCNIR(base), VQCNIR(quarter)
    assert {k: v.shape for k, v in quarter_net.state_dict().items()} == \
        {k: v.shape for k, v in eighth_net.state_dict().items()}
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        out, _, indices = quarter_net.forward_train(x)
        assert out.shape == x.shape and indices.numel() == (32 // 4) * (48 // 4)
        assert VQGAN(quarter).code_indices(x).shape[-2:] == (8, 12)
        assert VQGAN(base).code_indices(x).shape[-2:] == (4, 6)
    with pytest.raises(ValueError, match="quant_scale=2 is not 4 or 8"):
        base.with_(quant_scale=2)


def test_fast_preset_is_small_without_aiem_and_dbca_on_the_quarter_scale_codebook():
    fast, small = preset("fast"), preset("small")
    assert fast == small.with_(quant_scale=4, use_aiem=False, use_dbca=False)
    keys = set(VQCNIR(fast).state_dict())
    assert keys < set(VQCNIR(small).state_dict())  # only modules dropped, none added or reshaped
    assert not any(k.startswith(("main_decode.attn.", "multiscale_encoder.blocks.3.")) for k in keys)
