"""Statistical checks of the night+blur synthesis (vqcnir.data.degrade / kernels)."""

import numpy as np
import pytest

from vqcnir.data import (
    DegradeConfig, Degrader, add_noise, blur, convolve, darken, kernel_spread, photon_levels,
    shake_kernel,
)
from vqcnir.data.color import lightness, srgb_to_linear
from vqcnir.errors import VQCNIRError

skdata = pytest.importorskip("skimage.data")


def photo(name: str, size: int = 96) -> np.ndarray:
    img = getattr(skdata, name)()
    h, w = img.shape[:2]
    img = img[(h - size) // 2:(h + size) // 2, (w - size) // 2:(w + size) // 2]
    return img.astype(np.float32) / 255.0


@pytest.fixture(scope="module")
def photos():
    return [photo(n) for n in ("astronaut", "coffee", "chelsea", "rocket")]


# ----------------------------------------------------------------------------- darkening
def test_darkened_mean_lightness_matches_drawn_exposure(photos):
    degrader = Degrader()
    for seed in range(6):
        e = degrader.sample_params(seed)["darken"]["exposure"]
        assert 0.05 <= e <= 0.30
        for img in photos:
            dark, r = darken(img, e)
            light = lightness(dark)
            scene = lightness(img) <= 0.97
            assert abs(light[scene].mean() - e) <= 0.03
            assert abs(light.mean() - e) <= 0.03  # these photos have few light sources


def test_relative_exposure_keeps_a_dark_scene_darker(photos):
    """darken.relative: the night image's lightness is a fraction of the scene's, so a dimmer
    copy of a photo gives a dimmer night image (with the absolute target both come out alike)."""
    img = photos[1]
    dim = img * 0.4
    nights = {}
    for relative in (False, True):
        degrader = Degrader(DegradeConfig.from_dict({"darken": {"relative": relative, "exposure": [0.3, 0.3]},
                                                     "blur": {"p": 0.0}, "noise": {"model": "none"}}))
        params = degrader.sample_params(0)
        nights[relative] = [lightness(degrader.apply(x, params).night).mean() for x in (img, dim)]
    assert abs(nights[False][0] - nights[False][1]) < 0.02  # both brought to L* 0.3
    bright, dark = nights[True]
    assert abs(bright - 0.3 * lightness(img).mean()) < 0.02
    assert abs(dark - 0.3 * lightness(dim).mean()) < 0.02 and dark < 0.7 * bright


def test_light_sources_stay_bright():
    img = np.full((64, 64, 3), 0.5, dtype=np.float32)
    img[20:30, 20:30] = 1.0                      # a lamp
    img[40:50, 40:50] = [1.0, 0.99, 0.98]        # a warm, nearly clipped lamp
    dark, _ = darken(img, 0.08)
    assert dark[20:30, 20:30].min() >= 0.9
    assert dark[40:50, 40:50].min() >= 0.9
    assert dark[:10, :10].max() < 0.2


def test_darkening_keeps_hue(photos):
    img = photos[1]
    dark, _ = darken(img, 0.1)
    lin, lin_d = srgb_to_linear(img), srgb_to_linear(dark)
    ok = lin.min(axis=2) > 0.02
    ratio = lin_d[ok] / lin[ok]                  # one factor for all three channels
    assert np.allclose(ratio, ratio.mean(axis=1, keepdims=True), atol=2e-3, rtol=0.02)


# ----------------------------------------------------------------------------- blur
@pytest.mark.parametrize("length", [1, 4, 12, 31])
@pytest.mark.parametrize("defocus", [0.0, 0.8])
def test_kernels_are_nonnegative_normalised_and_centred(length, defocus):
    for seed in range(5):
        k = shake_kernel(seed, length, defocus)
        assert k.min() >= 0
        assert abs(float(k.sum()) - 1.0) < 1e-5
        assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
        ys, xs = np.mgrid[: k.shape[0], : k.shape[1]]
        c = k.shape[0] // 2
        assert abs((k * ys).sum() - c) < 0.05 and abs((k * xs).sum() - c) < 0.05


def test_blur_energy_grows_with_kernel_length(photos):
    img = photos[0]
    spreads, sharpness = [], []
    for length in (3, 9, 17, 31):
        ks = [shake_kernel(seed, length) for seed in range(6)]
        spreads.append(np.mean([kernel_spread(k) for k in ks]))
        grads = []
        for k in ks[:3]:
            out = blur(img, k)
            grads.append(np.mean(np.abs(np.diff(out, axis=0))) + np.mean(np.abs(np.diff(out, axis=1))))
        sharpness.append(np.mean(grads))
    assert all(a < b for a, b in zip(spreads, spreads[1:]))
    assert all(a > b for a, b in zip(sharpness, sharpness[1:]))


def test_fft_convolution_matches_direct():
    rng = np.random.default_rng(0)
    img = rng.random((20, 24, 3), dtype=np.float32)
    k = shake_kernel(1, 5)
    r = k.shape[0] // 2
    padded = np.pad(img, ((r, r), (r, r), (0, 0)), mode="reflect")
    direct = np.zeros_like(img)
    kf = k[::-1, ::-1]
    for dy in range(k.shape[0]):
        for dx in range(k.shape[1]):
            direct += kf[dy, dx] * padded[dy:dy + 20, dx:dx + 24]
    assert np.abs(convolve(img, k) - direct).max() < 1e-5


def test_saturated_lights_smear_into_streaks():
    img = np.full((48, 48, 3), 0.05, dtype=np.float32)
    img[24, 24] = 1.0
    k = shake_kernel(3, 15)
    plain = blur(img, k, highlight_alpha=0.0)
    boosted = blur(img, k, highlight_alpha=1.5)
    assert boosted.max() > plain.max()
    assert (boosted > 0.3).sum() > (plain > 0.3).sum()


# ----------------------------------------------------------------------------- noise
def noise_config(**kw) -> Degrader:
    return Degrader(DegradeConfig.from_dict({"noise": kw}))


def test_gaussian_noise_level_matches_drawn_sigma():
    flat = np.full((128, 128, 3), 0.5, dtype=np.float32)
    degrader = noise_config(gaussian_p=1.0, gaussian_sigma=[1.0, 8.0])
    for seed in range(8):
        p = degrader.sample_params(seed)["noise"]
        assert p["kind"] == "gaussian"
        out = add_noise(flat, p)
        assert abs((out - flat).std() / p["sigma"] - 1.0) < 0.10
        if p["grey"]:
            assert np.array_equal(out[..., 0], out[..., 2])


def test_poisson_noise_level_matches_photon_model():
    ramp = np.tile(np.linspace(0.1, 0.7, 256, dtype=np.float32)[None, :, None], (128, 1, 3))
    degrader = noise_config(gaussian_p=0.0, grey_p=0.0)
    levels = photon_levels(ramp)
    assert levels == 256  # 154 distinct 8-bit values, rounded up to a power of two
    for seed in range(4):
        p = degrader.sample_params(seed)["noise"]
        assert p["kind"] == "poisson"
        out = add_noise(ramp, dict(p, levels=levels))
        expected = p["scale"] * np.sqrt(ramp / levels)
        assert abs(((out - ramp) / expected).std() - 1.0) < 0.10


def test_raw_noise_grows_with_shot_noise():
    img = np.full((64, 64, 3), 0.3, dtype=np.float32)
    common = dict(kind="raw", read=1e-6, red_gain=2.0, blue_gain=1.7, noise_seed=1)
    weak = add_noise(img, dict(common, shot=1e-4))
    strong = add_noise(img, dict(common, shot=1e-2))
    assert 0 < (weak - img).std() < (strong - img).std()
    lamp = np.ones((8, 8, 3), dtype=np.float32)
    assert np.array_equal(add_noise(lamp, dict(common, shot=1e-2)), lamp)  # saturated: clean


# ----------------------------------------------------------------------------- pipeline
def test_same_seed_same_pair_and_params(photos):
    img = photos[2]
    a, b, c = Degrader()(img, 11), Degrader()(img, 11), Degrader()(img, 12)
    assert np.array_equal(a.night, b.night) and np.array_equal(a.gt, b.gt)
    assert a.params == b.params
    assert not np.array_equal(a.night, c.night)


def test_drawn_parameters_are_pinned():
    # The draws use only numpy's PCG64 stream and exact arithmetic on it, so these are the same
    # on every machine; a change here changes every synthesised dataset.
    p = Degrader().sample_params(0)
    assert p["darken"]["exposure"] == pytest.approx(0.28573438822071984, abs=1e-12)
    assert p["blur"]["kernel_seed"] == 169623679
    assert p["noise"]["kind"] == "gaussian"


def test_switching_a_stage_off_keeps_other_draws(photos):
    on = Degrader().sample_params(5)
    off = Degrader(DegradeConfig.from_dict({"noise": {"model": "none"}})).sample_params(5)
    assert on["darken"] == off["darken"] and on["blur"] == off["blur"]
    sample = Degrader(DegradeConfig.from_dict({"noise": {"model": "none"}, "blur": {"p": 0.0}}))(
        photos[0], 5, keep_stages=True)
    assert np.array_equal(sample.night, sample.stages["low_sharp"])


def test_ground_truth_is_dimmed_and_roi_is_respected(photos):
    img = photos[0]
    cfg = DegradeConfig.from_dict({"gt": {"scale": [0.8, 0.8]}})
    s = Degrader(cfg)(img, 3, roi=(10, 20, 40, 50))
    assert s.night.shape == s.gt.shape == (40, 50, 3)
    assert np.allclose(s.gt, img[10:50, 20:70] * 0.8, atol=1e-6)


def test_config_errors_are_user_errors():
    with pytest.raises(VQCNIRError, match="blur.lenght"):
        DegradeConfig.from_dict({"blur": {"lenght": [1, 2]}})
    with pytest.raises(VQCNIRError, match="low"):
        DegradeConfig.from_dict({"darken": {"exposure": [0.3, 0.1]}})


def test_roi_needs_only_kernel_context(photos):
    # Degrading a crop with enough context around it equals degrading the whole image's roi.
    img = np.concatenate([photos[0], photos[1]], axis=1)       # 96×192
    degrader = Degrader(DegradeConfig.from_dict({"blur": {"length": [9.0, 9.0]}}))
    params = degrader.sample_params(4)
    whole = degrader.apply(img, params, roi=(30, 60, 32, 48))
    m = degrader.margin
    part = degrader.apply(img[30 - m:62 + m, 60 - m:108 + m], params, roi=(m, m, 32, 48))
    assert np.array_equal(whole.night, part.night) and np.array_equal(whole.gt, part.gt)


def test_srgb_ratio_space_scales_srgb_values(photos):
    img = photos[1]
    dark, _ = darken(img, 0.1, ratio_space="srgb")
    ok = img.min(axis=2) > 0.05
    ratio = dark[ok] / img[ok]                   # LEDNet's reading: one factor on sRGB values
    assert np.allclose(ratio, ratio.mean(axis=1, keepdims=True), atol=1e-5)
    assert lightness(dark).mean() < lightness(darken(img, 0.1)[0]).mean()
