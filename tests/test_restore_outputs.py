"""`vqcnir restore` never loses a result: distinct outputs for every input, no-clobber at the moment
of writing, never reading its own output folder, no temporary files left, clean logs."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from vqcnir.cli import main


@pytest.fixture
def weights(tiny_checkpoint):
    return tiny_checkpoint


def _photo(path, seed=0, size=(24, 16)):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 80, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def run(*args):
    return main([str(a) for a in args])


def _cli_env():
    src = os.path.join(os.path.dirname(__file__), os.pardir, "src")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.abspath(src), os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1"}


# ---------------------------------------------------------------- item 1: same names across inputs
@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_two_files_with_one_name_are_refused_before_anything_is_written(tmp_path, weights, capsys, overwrite):
    a, b = _photo(tmp_path / "a" / "x.png", 1), _photo(tmp_path / "b" / "x.png", 2)
    out = tmp_path / "out"
    assert run("restore", a, b, "-o", out, "--weights", weights, *overwrite) == 2
    err = capsys.readouterr().err
    assert "same output name x.png" in err and str(a) in err and str(b) in err
    assert not out.exists()


def test_two_folders_with_the_same_names_are_refused(tmp_path, weights, capsys):
    for folder, seed in (("day1", 1), ("day2", 2)):
        _photo(tmp_path / folder / "x.png", seed)
        _photo(tmp_path / folder / f"only-{folder}.png", seed)
    out = tmp_path / "out"
    assert run("restore", tmp_path / "day1", tmp_path / "day2", "-o", out, "--weights", weights) == 2
    assert "same output name x.png" in capsys.readouterr().err
    assert not out.exists()


def test_the_same_file_named_twice_is_restored_once(tmp_path, weights, capsys):
    a = _photo(tmp_path / "a" / "x.png")
    assert run("restore", a, tmp_path / "a", "-o", tmp_path / "out", "--weights", weights) == 0
    assert "restored 1, skipped 0" in capsys.readouterr().out


# ---------------------------------------------------------------- item 2: no-clobber when writing
def _another_run_writes_first(monkeypatch, target, content):
    """Make `target` appear while the image is being restored, as a concurrent run would."""
    import vqcnir.engine

    real = vqcnir.engine.restore_tensor

    def restore_tensor(*args, **kwargs):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        return real(*args, **kwargs)

    monkeypatch.setattr(vqcnir.engine, "restore_tensor", restore_tensor)


def test_a_file_that_appears_while_restoring_is_kept(tmp_path, weights, capsys, monkeypatch):
    src = _photo(tmp_path / "night" / "x.png")
    out = tmp_path / "out"
    _another_run_writes_first(monkeypatch, out / "x.png", b"written by another run")
    assert run("restore", src, "-o", out, "--weights", weights) == 0
    assert (out / "x.png").read_bytes() == b"written by another run"
    assert "restored 0, skipped 1" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["x.png"]  # no temporary file left


def test_overwrite_still_replaces_a_file_that_appears_meanwhile(tmp_path, weights, monkeypatch):
    src = _photo(tmp_path / "night" / "x.png")
    out = tmp_path / "out"
    _another_run_writes_first(monkeypatch, out / "x.png", b"old")
    assert run("restore", src, "-o", out, "--weights", weights, "--overwrite") == 0
    assert Image.open(out / "x.png").size == (24, 16)


# ---------------------------------------------------------------- item 3: never read the output folder
def test_recursive_run_never_reads_its_output_folder(tmp_path, weights, capsys):
    night = tmp_path / "night"
    _photo(night / "a.png", 1)
    _photo(night / "sub" / "b.png", 2)
    out = night / "restored"
    for _ in range(2):
        assert run("restore", night, "-o", out, "--weights", weights, "--recursive") == 0
    assert "restored 0, skipped 2" in capsys.readouterr().out.splitlines()[-1]
    assert not (out / "restored").exists()
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == ["a.png", "sub/b.png"]


# ---------------------------------------------------------------- item 12: temporary files, logs
def test_temporary_files_of_killed_runs_are_removed_and_live_ones_kept(tmp_path, weights, capsys):
    src = _photo(tmp_path / "night" / "x.png")
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()  # its process id now belongs to no process
    dead = [out / f".x.png.{finished.pid}-0123abcd.tmp", out / "sub" / f".y.png.{finished.pid}-89abcdef.tmp"]
    live = out / f".z.png.{os.getpid()}-00000000.tmp"  # a concurrent run still writing it
    mine = out / "notes.tmp"  # not one of ours
    for path in (*dead, live, mine):
        path.write_bytes(b"partial")
    assert run("restore", src, "-o", out, "--weights", weights) == 0
    assert "removed 2 temporary file(s)" in capsys.readouterr().err
    assert not any(p.exists() for p in dead) and live.exists() and mine.exists()


def test_logs_hold_whole_lines_when_stderr_is_not_a_terminal(tmp_path, weights):
    night = tmp_path / "night"
    _photo(night / "a.png", 1, size=(64, 48))
    (night / "broken.png").write_bytes(b"not a png")
    result = subprocess.run(
        [sys.executable, "-m", "vqcnir", "restore", str(night), "-o", str(tmp_path / "out"),
         "--weights", str(weights), "--tile", "32", "--tile-overlap", "8"],
        capture_output=True, timeout=300, env=_cli_env())  # bytes: text mode would turn \r into \n
    assert result.returncode == 1
    stderr = result.stderr.decode()
    assert "\r" not in stderr
    errors = [line for line in stderr.split("\n") if line.startswith("error:")]
    assert len(errors) == 1 and "broken.png" in errors[0]


# ---------------------------------------------------------------- load: concurrent runs, one folder
def test_concurrent_runs_into_one_folder_lose_nothing(tmp_path, weights):
    night = tmp_path / "night"
    names = [f"{i:02d}.png" for i in range(12)]
    for i, name in enumerate(names):
        _photo(night / name, i, size=(32, 24))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "vqcnir", "restore", str(night), "-o", str(out), "--weights", str(weights)]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_cli_env())
            for _ in range(3)]
    outputs = [r.communicate(timeout=300) for r in runs]
    assert [r.returncode for r in runs] == [0, 0, 0], [err for _, err in outputs]
    counts = [tuple(map(int, re.search(r"restored (\d+), skipped (\d+)", out).groups())) for out, _ in outputs]
    assert sum(restored for restored, _ in counts) == len(names)  # each image written exactly once
    assert all(restored + skipped == len(names) for restored, skipped in counts)
    assert sorted(p.name for p in out.iterdir()) == names  # no temporary file left
    for name in names:  # none half-written
        with Image.open(out / name) as image:
            image.load()
            assert image.size == (32, 24)
