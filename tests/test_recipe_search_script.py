"""scripts/recipe_search.py end to end with the tiny network: an arm trains both stages at a
fixed CPU budget and is scored; `final` continues it in copies; `report` tables it; the record
keeps finished runs through the loss of the working folder."""

import argparse
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def _photos_and_val(tmp_path):
    rng = np.random.default_rng(0)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):  # smooth random photos
        small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize((160, 144), Image.BILINEAR).save(photos / f"p{i}.png")
    val = tmp_path / "val"
    for side, scale in (("high_sharp_scaled", 1.0), ("low_blur_noise", 0.2)):
        (val / side / "a").mkdir(parents=True)
        for i in range(2):
            sharp = np.asarray(Image.open(photos / f"p{i}.png"), np.float32)[:32, :48]
            Image.fromarray((sharp * scale).astype(np.uint8)).save(val / side / "a" / f"{i}.png")
    return photos, val


def test_an_arm_then_its_final_run(tmp_path, load_script, monkeypatch, capsys):
    search = load_script("recipe_search")
    monkeypatch.setattr(search, "PRESET", "tiny")
    monkeypatch.setattr(search, "FAMILIES", {"small": ["data.synth_length=8", "data.batch_size=2", "data.num_workers=0"]})
    monkeypatch.setattr(search, "CONTROL", ["data.crop=32", "data.batch_size=2", "data.num_workers=0"])
    monkeypatch.setattr(search, "VAL_EVERY", 1)
    monkeypatch.setattr(search, "STAGE1_CPU_MIN", 0.001)  # a budget below one iteration's CPU time
    monkeypatch.setattr(search, "STAGE2_CPU_MIN", 0.001)
    photos, val = _photos_and_val(tmp_path)
    root, record = tmp_path / "search", tmp_path / "record"
    common = ["--photos", str(photos), "--val", str(val), "--root", str(root), "--record", str(record)]

    assert search.main(["run", *common, "--arms", "control"]) == 0
    for run in ("stage1-small", "control"):
        assert (root / run / "finished.json").is_file()
        assert "its CPU budget of 0.001 min is used" in (root / run / "log.txt").read_text()
    scores = json.loads((root / "control" / "scores.json").read_text())
    assert set(scores) >= {"psnr", "ssim", "blockiness8", "blockiness4", "gt_mean_psnr", "gt_blockiness8", "gt_blockiness4"}
    assert all(np.isfinite(v) for v in scores.values())
    # the record: logs, configs and scores, stage 1's weights (what the arm trained against)
    assert json.loads((record / "control" / "scores.json").read_text()) == scores
    assert (record / "stage1-small" / "stage1.safetensors").is_file()
    control_config = (record / "control" / "config.yaml").read_text()
    assert "stage1-small/stage1.safetensors" in control_config
    for file in ("config.yaml", "log.txt"):  # paths relative to where the search ran
        assert not re.search(r"(?<!\.)" + re.escape(str(tmp_path)), (record / "control" / file).read_text())
    shutil.rmtree(record / "control")  # `record` copies what --root has finished
    assert search.main(["record", "--root", str(root), "--record", str(record)]) == 0
    assert json.loads((record / "control" / "scores.json").read_text()) == scores

    # each saved checkpoint scored: a stage 1 reconstructs (no GT-mean, SSIM, brightness columns), a
    # restorer restores; --plot draws the same scores
    for run, columns in (("stage1-small", 5), ("control", 8)):
        capsys.readouterr()
        plot = tmp_path / f"{run}.png"
        assert search.main(["checkpoints", "--run", run, "--val", str(val), "--root", str(root), "--plot", str(plot)]) == 0
        assert plot.stat().st_size > 1000
        out = capsys.readouterr().out
        rows = [line.strip("|").split("|") for line in out.splitlines() if re.match(r"\| \d", line)]
        assert rows and all(len(r) == columns for r in rows), out
        assert all(np.isfinite(float(v)) for r in rows for v in r[2:]) and "ground truth blockiness8, blockiness4: " in out
        assert all(r[1].strip() == "–" or float(r[1]) >= 0 for r in rows)  # CPU-minutes where the log has them
    with pytest.raises(SystemExit, match="no saved checkpoints"):
        search.main(["checkpoints", "--run", "no_perc", "--val", str(val), "--root", str(root)])
    # exported weights score too (what a GPU lease brings back), with the .pth's numbers
    from vqcnir.weights import convert

    (root / "lease" / "models").mkdir(parents=True)
    convert(root / "control" / "models" / "net_g_latest.pth", root / "lease" / "models" / "net_g_7.safetensors")
    capsys.readouterr()
    assert search.main(["checkpoints", "--run", "lease", "--val", str(val), "--root", str(root)]) == 0
    exported = [line.split("|")[3:] for line in capsys.readouterr().out.splitlines() if line.startswith("| 7 ")]
    assert exported and exported[0] == [line.split("|")[3:] for line in out.splitlines() if re.match(r"\| \d", line)][-1]

    # final: stage 1 goes on from the recorded weights; paused by --hours (a session's end) ...
    assert search.main(["final", *common, "--arm", "control", "--stage1-cpu-min", "100", "--cpu-min", "0.001", "--patience", "1000",
                        "--hours", str(1.1 / 60)]) == 0
    assert "weights initialised from" in (root / "final-stage1-small" / "log.txt").read_text()
    assert "stage1-small/stage1.safetensors" in (root / "final-stage1-small" / "config.yaml").read_text()
    legs = json.loads((record / "final-stage1-small" / "legs.json").read_text())
    assert legs["leg"] == 1 and legs["cpu_min_run"] >= 0 and (record / "final-stage1-small" / "latest.safetensors").is_file()
    assert (record / "final-stage1-small" / "log-leg1.txt").is_file() and not (root / "final-control").exists()
    assert not re.search(r"(?<!\.)" + re.escape(str(tmp_path)), (record / "final-stage1-small" / "log-leg1.txt").read_text())
    # ... then its working folder is lost: the next leg starts from the recorded pause, for the rest
    shutil.rmtree(root / "final-stage1-small")
    kept_weights = record / "final-stage1-small" / "latest.safetensors"  # without the pause's weights: one line, no leg
    kept_weights.rename(tmp_path / "latest.safetensors")
    with pytest.raises(SystemExit, match="are not in the record; it cannot go on"):
        search.main(["final", *common, "--arm", "control", "--stage1-cpu-min", "100", "--cpu-min", "0.002"])
    assert json.loads((record / "final-stage1-small" / "legs.json").read_text()) == legs
    (tmp_path / "latest.safetensors").rename(kept_weights)
    budget = 2 * (legs["cpu_min_run"] + 0.001)  # CPU-minutes of both processes; a leg records one's
    assert search.main(["final", *common, "--arm", "control", "--stage1-cpu-min", str(budget),
                        "--cpu-min", "0.002", "--opt", "train.losses.frequency=0.1"]) == 0
    stage1_log = (root / "final-stage1-small" / "log.txt").read_text()
    assert "final-stage1-small/latest.safetensors" in stage1_log and "its CPU budget of 0.001 min is used" in stage1_log
    assert "2 process(es) on cpu" in stage1_log  # DDP, one thread each (--ranks, default 2)
    assert json.loads((record / "final-stage1-small" / "legs.json").read_text())["leg"] == 2
    final_log = (root / "final-control" / "log.txt").read_text()
    assert "trained parts initialised from" in final_log and "control" in final_log  # the arm's restorer
    assert "final-stage1-small/stage1.safetensors" in (root / "final-control" / "config.yaml").read_text()  # stage 1 gone on
    assert re.search(r"frequency: 0\.1\b", (root / "final-control" / "config.yaml").read_text())  # --opt: the chosen losses
    assert re.search(r"plateau_drops: 2\b", (root / "final-control" / "config.yaml").read_text())  # lower lr at plateaus
    assert "best gt_mean_psnr" in final_log  # chosen by structure, not by its guess of brightness
    assert (root / "final-control" / "scores.json").is_file() and (record / "final-control" / "restorer.safetensors").is_file()
    assert not (root / "stage1-small" / "models" / "net_g_2.pth").exists()  # the search's runs stay as scored

    capsys.readouterr()
    assert search.main(["report", "--root", str(root), "--record", str(record)]) == 0
    table = capsys.readouterr().out
    assert "| control | small |" in table
    assert search.main(["report", "--root", str(root), "--record", str(record), "--plot", str(tmp_path / "c.png")]) == 0
    assert Image.open(tmp_path / "c.png").size[0] > 1000  # both panels: PSNR and GT-mean PSNR
    assert search._curve("validation @ 8: psnr 18.5  gt_mean_psnr 24.25  (cpu 3.5 min)", "gt_mean_psnr") == [(3.5, 24.25)]

    # the working folder is lost: the recorded runs are not trained again, the table is the same
    shutil.rmtree(root)
    assert search.main(["run", *common, "--arms", "control"]) == 0
    assert not root.exists() or not any(root.glob("*/log.txt"))
    capsys.readouterr()
    assert search.main(["report", "--root", str(root), "--record", str(record)]) == 0
    assert capsys.readouterr().out == table
    with pytest.raises(SystemExit, match="arm no_perc has not finished"):
        search.main(["final", *common, "--arm", "no_perc"])


def test_the_more_photos_arm_trains_its_restorer_on_the_photos_it_is_given(load_script):
    search = load_script("recipe_search")
    with pytest.raises(SystemExit, match="more_photos train on --more-photos"):
        search.main(["run", "--photos", "p", "--val", "v", "--arms", "control,more_photos"])
    args = argparse.Namespace(photos="train", more_photos="train_more")
    assert search._arm_photos(args, "more_photos") == "train_more" and search._arm_photos(args, "d_only_q4") == "train"
    stage2 = search._stage2_opts(search._arm_photos(args, "more_photos"), "small_q4", "more_photos", Path("s1"), Path("v"))
    assert "data.root=train_more" in stage2 and stage2[stage2.index("data.root=train_more") + 1:].count("data.root") == 0
    # the same network as the final's arm, on more photos
    assert search.ARMS["more_photos"] == search.ARMS["d_only_q4"]


def test_ctrl_c_stops_the_training_with_a_state_saved_and_starts_nothing_more(tmp_path, load_script, monkeypatch, capsys):
    """The search passes a Ctrl+C on to the training it runs (in its own session), which saves
    where it stopped; the search then starts no further run and exits as a signal does."""
    import os
    import signal
    import threading
    import time

    search = load_script("recipe_search")
    monkeypatch.setattr(search, "PRESET", "tiny")
    monkeypatch.setattr(search, "FAMILIES", {"small": ["data.synth_length=8", "data.batch_size=2", "data.num_workers=0",
                                                       "logging.print_every=1"]})
    monkeypatch.setattr(search, "VAL_EVERY", 100000)
    monkeypatch.setattr(search, "STAGE1_CPU_MIN", 100)
    monkeypatch.setattr(search, "STOPPED_BY", [])
    photos, val = _photos_and_val(tmp_path)
    root = tmp_path / "search"
    log = root / "stage1-small" / "log.txt"

    def ctrl_c_once_training():
        deadline = time.monotonic() + 240
        while not (log.is_file() and re.search(r"iter \d", log.read_text())) and time.monotonic() < deadline:
            time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=ctrl_c_once_training, daemon=True).start()
    capsys.readouterr()
    assert search.main(["run", "--photos", str(photos), "--val", str(val), "--root", str(root),
                        "--record", str(tmp_path / "record"), "--arms", "control"]) == 130
    stopped = re.findall(r"stopped stage1-small at iteration (\d+) of 1000000: SIGINT asked it to stop", log.read_text())
    assert stopped and (root / "stage1-small" / "training_states" / f"{stopped[0]}.state").is_file()
    assert not (root / "stage1-small" / "finished.json").exists() and not (root / "control").exists()
    assert "stopped by SIGINT: what was trained is saved; the same command goes on" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
