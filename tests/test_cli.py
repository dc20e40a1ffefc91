"""`vqcnir restore` and `vqcnir convert` end to end, with a tiny model and images made here."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from vqcnir.cli import main
from vqcnir.nn import VQCNIR, preset
from vqcnir.weights import save_checkpoint


@pytest.fixture
def weights(tiny_checkpoint):
    return tiny_checkpoint


def _photo(path, size=(40, 32), mode="RGB"):
    rng = np.random.default_rng(len(str(path)))
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = rng.integers(0, 80, (size[1], size[0], channels), dtype=np.uint8)
    Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode).save(path)
    return path


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "night"
    (folder / "sub").mkdir(parents=True)
    _photo(folder / "a.png")
    _photo(folder / "b.jpg")
    _photo(folder / "grey.png", mode="L")
    _photo(folder / "sub" / "c.png", size=(24, 24))
    return folder


def run(*args):
    return main([str(a) for a in args])


def test_restore_a_folder(tmp_path, photos, weights, capsys):
    out = tmp_path / "out"
    assert run("restore", photos, "-o", out, "--weights", weights) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.jpg", "grey.png"]
    assert Image.open(out / "a.png").size == (40, 32)
    assert Image.open(out / "grey.png").mode == "L"
    assert "restored 3, skipped 0" in capsys.readouterr().out


def test_recursive_mirrors_sub_folders(tmp_path, photos, weights):
    out = tmp_path / "out"
    assert run("restore", photos, "-o", out, "--weights", weights, "--recursive", "--pad-mode", "minimal") == 0
    assert (out / "sub" / "c.png").is_file()


def test_existing_outputs_are_kept_unless_overwrite(tmp_path, photos, weights, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"mine")
    assert run("restore", photos / "a.png", "-o", out, "--weights", weights) == 0
    assert (out / "a.png").read_bytes() == b"mine"
    assert "skipped 1" in capsys.readouterr().out
    assert run("restore", photos / "a.png", "-o", out, "--weights", weights, "--overwrite") == 0
    assert Image.open(out / "a.png").size == (40, 32)


def test_inputs_are_never_overwritten(photos, weights, capsys):
    before = (photos / "a.png").read_bytes()
    assert run("restore", photos / "a.png", "-o", photos, "--weights", weights, "--overwrite") == 1
    assert (photos / "a.png").read_bytes() == before
    assert "would overwrite the input" in capsys.readouterr().err


def test_bad_files_are_reported_and_the_rest_restored(tmp_path, photos, weights, capsys):
    (photos / "notes.png").write_text("not an image")
    jpeg = (photos / "b.jpg").read_bytes()
    (photos / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    _photo(photos / "dot.png", size=(1, 1))
    out = tmp_path / "out"
    code = run("restore", photos, tmp_path / "nowhere", "-o", out, "--weights", weights)
    err = capsys.readouterr().err
    assert code == 1
    assert {"a.png", "b.jpg", "grey.png"} <= {p.name for p in out.iterdir()}
    for name in ("notes.png", "cut.jpg", "dot.png", "nowhere"):
        assert sum(name in line for line in err.splitlines() if line.startswith("error:")) == 1, name
    assert "Traceback" not in err
    assert not (out / "notes.png").exists() and not (out / "cut.jpg").exists()


@pytest.mark.parametrize("name, says", [("nothere.pth", "not a model name"), ("paper", "VQCNIR_LOLBlur_G.pth")])
def test_unknown_or_unbundled_weights_are_explained_in_one_line(tmp_path, photos, capsys, name, says):
    assert run("restore", photos, "-o", tmp_path / "out", "--weights", name) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and says in err and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_side_by_side_rows_hold_night_restored_and_ground_truth(tmp_path, photos, weights, capsys):
    gt = tmp_path / "gt"
    gt.mkdir()
    _photo(gt / "a.png")  # b.jpg and grey.png have no ground truth: two columns only
    sheet = tmp_path / "sheet.png"
    assert run("restore", photos, "-o", tmp_path / "out", "--weights", weights,
               "--side-by-side", sheet, "--gt", gt) == 0
    assert "side-by-side picture of 3 photo(s)" in capsys.readouterr().out
    picture = np.asarray(Image.open(sheet))
    from vqcnir.sheet import GAP, LABEL_HEIGHT, ROW_HEIGHT

    assert picture.shape[0] == 3 * (ROW_HEIGHT + LABEL_HEIGHT) + 2 * GAP
    a_row_width = 3 * round(40 * ROW_HEIGHT / 32) + 2 * GAP  # a.png: night | restored | gt
    assert picture.shape[1] == a_row_width
    # rows without ground truth are padded with white on the right
    assert (picture[-ROW_HEIGHT:, -ROW_HEIGHT:] == 255).all()


def test_side_by_side_never_replaces_a_file(tmp_path, photos, weights, capsys):
    sheet = tmp_path / "sheet.png"
    sheet.write_bytes(b"mine")
    assert run("restore", photos, "-o", tmp_path / "out", "--weights", weights, "--side-by-side", sheet) == 2
    assert sheet.read_bytes() == b"mine" and not (tmp_path / "out").exists()
    assert "already exists" in capsys.readouterr().err


def test_models_lists_the_default_and_explains_paper(capsys):
    assert run("models") == 0
    out = capsys.readouterr().out
    assert out.startswith("default:") and "used when --weights is not given" in out
    assert "paper:" in out and "VQCNIR_LOLBlur_G.pth" in out


def test_wrong_checkpoint_is_one_line(tmp_path, photos, capsys):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"junk")
    assert run("restore", photos, "-o", tmp_path / "out", "--weights", bad) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err


def test_fp16_on_cpu_is_refused_before_any_work(tmp_path, photos, weights, capsys):
    assert run("restore", photos, "-o", tmp_path / "out", "--weights", weights, "--device", "cpu",
               "--precision", "fp16") == 2
    assert "fp16 needs a GPU" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_convert_command(tmp_path, weights, capsys):
    assert run("convert", weights, tmp_path / "tiny.pth") == 0
    assert "wrote" in capsys.readouterr().out
    assert run("convert", weights, tmp_path / "tiny.pth") == 2  # exists, not overwritten


def test_convert_to_fp16_halves_the_file_and_still_restores(tmp_path, weights, photos):
    from vqcnir.weights import read_checkpoint

    half = tmp_path / "tiny16.safetensors"
    assert run("convert", weights, half, "--dtype", "fp16") == 0
    state, config = read_checkpoint(half)
    assert config is not None and all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    assert half.stat().st_size < 0.6 * weights.stat().st_size
    assert run("restore", photos / "a.png", "-o", tmp_path / "out", "--weights", half) == 0


def test_convert_refuses_values_fp16_cannot_hold(tmp_path, capsys):
    big = tmp_path / "big.safetensors"
    state = VQCNIR(preset("tiny")).state_dict()
    next(v for v in state.values() if v.is_floating_point()).fill_(1e6)
    save_checkpoint(big, state, preset("tiny"))
    assert run("convert", big, tmp_path / "b16.safetensors", "--dtype", "fp16") == 2
    assert "beyond" in capsys.readouterr().err and not (tmp_path / "b16.safetensors").exists()


def test_real_process_prints_no_traceback(tmp_path, weights):
    result = subprocess.run(
        [sys.executable, "-m", "vqcnir", "restore", str(tmp_path / "missing.png"), "-o", str(tmp_path / "o"),
         "--weights", str(weights)], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "missing.png" in result.stderr


def test_a_reader_that_stops_early_gets_no_traceback():
    """`vqcnir models | head -1`: the pipe closes before vqcnir writes; it stops quietly."""
    proc = subprocess.Popen([sys.executable, "-m", "vqcnir", "models"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # before vqcnir (still importing) writes a line
    stderr = proc.stderr.read()
    assert proc.wait(timeout=120) == 141
    assert stderr == ""


def test_tiles_chosen_by_the_user(tmp_path, photos, weights, capsys):
    out = tmp_path / "out"
    assert run("restore", photos / "a.png", "-o", out, "--weights", weights, "--tile", "16", "--tile-overlap", "8") == 0
    assert Image.open(out / "a.png").size == (40, 32)
    assert run("restore", photos / "a.png", "-o", out, "--weights", weights, "--tile", "16",
               "--tile-overlap", "16", "--overwrite") == 2
    assert "--tile-overlap" in capsys.readouterr().err


def test_self_ensemble_restores_differently(tmp_path, photos, weights):
    plain, ensembled = tmp_path / "plain", tmp_path / "ensembled"
    assert run("restore", photos / "a.png", "-o", plain, "--weights", weights) == 0
    assert run("restore", photos / "a.png", "-o", ensembled, "--weights", weights, "--self-ensemble") == 0
    a, b = (np.asarray(Image.open(d / "a.png")) for d in (plain, ensembled))
    assert a.shape == b.shape == (32, 40, 3) and not np.array_equal(a, b)


def test_restore_never_imports_the_photo_downloader(tmp_path, photos, weights):
    """`vqcnir data photos` shells out to apt; restoring must not even import it."""
    code = ("import sys; from vqcnir.cli import main; "
            f"status = main(['restore', {str(photos / 'a.png')!r}, '-o', {str(tmp_path / 'out')!r}, "
            f"'--weights', {str(weights)!r}]); "
            "print(status, 'vqcnir.data.photos' in sys.modules, 'vqcnir.data.cli' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.stdout.split()[-3:] == ["0", "False", "True"], result.stderr  # `data` was registered
