"""Training: configs, both stages end to end, freezing, exact resume, DDP equivalence, skipped steps.

Everything runs the "tiny" network on 16x16 procedural crops, single-threaded (the test machine's
cores are shared), so the whole file takes well under a minute or two.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vqcnir.errors import VQCNIRError
from vqcnir.train import FROZEN_STAGE2, load_config, run_training, shipped_presets
from vqcnir.train.cli import register
from vqcnir.train import Trainer
from vqcnir.weights import load_network, read_checkpoint


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(stage: int, root: Path, *opts: str):
    return load_config(f"tiny-stage{stage}", [
        f"experiments_root={root.as_posix()}", "data.crop=16", "val.crop=16", "val.num_images=2",
        "data.synth_length=32", *opts])


def params(path: Path, key: str = "params") -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)[key]


# ----------------------------------------------------------------------------- configs
def test_shipped_presets_and_paper_recipe():
    assert set(shipped_presets()) >= {f"{s}-stage{n}" for s in ("paper", "small", "tiny") for n in (1, 2)}
    for name in shipped_presets():
        cfg = load_config(name, ["data.root=somewhere"])
        assert cfg.name == name and cfg.stage == int(name[-1])
    cfg = load_config("paper-stage2", ["data.root=x"])
    t = cfg.train
    assert (cfg.data.crop, cfg.data.batch_size, t.total_iter) == (256, 8, 500_000)
    assert (t.optim_g.lr, t.optim_g.betas, t.optim_d.lr) == (1e-4, [0.9, 0.99], 4e-4)
    w = t.losses
    assert (w.pixel, w.codebook, w.perceptual, w.adversarial) == (1.0, 1.0, 1.0, 0.1)
    assert cfg.model.network_config().width == 64 and cfg.model.use_aiem and cfg.model.use_dbca


def test_overrides_reach_every_key():
    cfg = load_config("tiny-stage2", ["model.use_dbca=false", "train.optim_g.lr=3e-4",
                                      "train.scheduler.milestones=[5, 9]", "stage2.freeze_out_conv=true"])
    assert cfg.model.network_config().use_dbca is False
    assert cfg.train.optim_g.lr == 3e-4 and cfg.train.scheduler.milestones == [5, 9]
    assert cfg.stage2.freeze_out_conv is True


@pytest.mark.parametrize("opts, message", [
    (["train.totl_iter=5"], "did you mean 'total_iter'"),
    (["trian.total_iter=5"], "did you mean 'train'"),
    (["model.widht=16"], "did you mean 'width'"),
    (["train.total_iter=many"], "must be an integer"),
    (["train.grad_clip=-1"], "grad_clip"),
    (["data.crop=20"], "multiple of 8"),
    (["stage2.stage1_checkpoint=null"], "stage1_checkpoint"),
    (["train.losses.perceptual_net=vgg19"], "perceptual_net"),
    (["val.metrics=[psnr, niqe]"], "full-reference"),
    (["model.width=10"], "model:"),
    (["model.upsample=bicubic"], "model: invalid VQCNIRConfig: upsample='bicubic'"),
    (["data.kind=paired"], "night_dir"),
    (["no_equals_sign"], "key=value"),
    (["data.degrade.noise.modle=none"], "data.degrade: unknown synthesis option noise.modle"),
])
def test_bad_configs_are_rejected_clearly(opts, message):
    with pytest.raises(VQCNIRError, match=message):
        load_config("tiny-stage2", opts)


def test_bad_config_files(tmp_path):
    with pytest.raises(VQCNIRError, match="neither a file nor a shipped preset"):
        load_config("tiny-stage3")
    bad = tmp_path / "bad.yaml"
    bad.write_text("stage: [1\n")
    with pytest.raises(VQCNIRError, match="not valid YAML"):
        load_config(str(bad))
    bad.write_text("name: x\nstage: 1\nmodel: {preset: tiny}\ndata: {kind: synthetic, crop: 16, batchsize: 2}\n")
    with pytest.raises(VQCNIRError, match="data.batchsize.*batch_size"):
        load_config(str(bad))


def test_cli_subcommand(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["train", "-c", "tiny-stage1", "--opt", "seed=3", "--print-config"])
    assert args.func(args) == 0
    assert "seed: 3" in capsys.readouterr().out
    args = parser.parse_args(["train", "-c", "tiny-stage1", "--opt", "train.bogus=1"])
    with pytest.raises(VQCNIRError, match="bogus"):
        args.func(args)
    from vqcnir.train.cli import main  # `python -m vqcnir.train`: one error line, exit status 2

    assert main(["-c", "tiny-stage1", "--opt", "train.bogus=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: unknown config key 'train.bogus'")


# ----------------------------------------------------------------------------- both stages
def test_stage1_then_stage2(tmp_path):
    r1 = run_training(tiny(1, tmp_path, "train.total_iter=30", "logging.print_every=5",
                           "val.every=30", "logging.save_every=30"), device="cpu")
    first, last = r1["history"][0][1], r1["history"][-1][1]
    assert last["l_pix"] < 0.8 * first["l_pix"], r1["history"]
    exp1 = tmp_path / "tiny-stage1"
    for rel in ("config.yaml", "log.txt", "models/net_g_30.pth", "models/net_g_best.pth",
                "training_states/30.state", "visualization/val_00000030.png"):
        assert (exp1 / rel).is_file(), rel
    assert "codes" in (exp1 / "log.txt").read_text() and "perplexity" in (exp1 / "log.txt").read_text()
    ckpt1 = exp1 / "models" / "net_g_latest.pth"
    load_network(ckpt1, stage=1)
    stage1 = params(ckpt1, "params_ema")

    r2 = run_training(tiny(2, tmp_path, "train.total_iter=30", "logging.print_every=5", "val.every=30",
                           "logging.save_every=30", f"stage2.stage1_checkpoint={ckpt1.as_posix()}"),
                      device="cpu")
    first, last = r2["history"][0][1], r2["history"][-1][1]
    assert last["l_pix"] < first["l_pix"], r2["history"]
    ckpt2 = tmp_path / "tiny-stage2" / "models" / "net_g_latest.pth"
    model = load_network(ckpt2, stage=2)  # what `vqcnir restore --weights` does
    assert model(torch.rand(1, 3, 16, 16)).shape == (1, 3, 16, 16)
    for key in ("params", "params_ema"):
        stage2 = params(ckpt2, key)
        frozen = [k for k in stage2 if k.startswith(FROZEN_STAGE2)]
        assert frozen and all(torch.equal(stage2[k], stage1[k]) for k in frozen)
        trained = [k for k in stage2 if k.startswith("multiscale_encoder.in_conv")]
        assert not all(torch.equal(stage2[k], stage1[k]) for k in trained)


def _write_pairs(root: Path, n: int = 6, size: int = 24) -> None:
    rng = np.random.default_rng(0)
    for side in ("night", "gt"):
        (root / side).mkdir(parents=True)
    for i in range(n):
        gt = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(gt).save(root / "gt" / f"{i}.png")
        Image.fromarray((gt // 5).astype(np.uint8)).save(root / "night" / f"{i}.png")


def test_stage2_ablation_on_paired_folders(tmp_path):
    """Table 3's switches (no AIEM, no DBCA), with the encoder skips, on vqcnir.data's paired
    folders, out_conv frozen."""
    run_training(tiny(1, tmp_path, "train.total_iter=2", "val.every=2", "logging.save_every=2"), device="cpu")
    ckpt1 = tmp_path / "tiny-stage1" / "models" / "net_g_latest.pth"
    _write_pairs(tmp_path / "pairs")
    cfg = tiny(2, tmp_path, "name=ablation", "train.total_iter=2", "val.every=2", "logging.save_every=2",
               "model.use_aiem=false", "model.use_dbca=false", "model.encoder_skips=true",
               "stage2.freeze_out_conv=true", "data.kind=paired", f"data.night_dir={(tmp_path / 'pairs/night').as_posix()}",
               f"data.gt_dir={(tmp_path / 'pairs/gt').as_posix()}", "data.batch_size=2",
               "data.val_fraction=0.3", f"stage2.stage1_checkpoint={ckpt1.as_posix()}")
    run_training(cfg, device="cpu")
    state, config = read_checkpoint(tmp_path / "ablation" / "models" / "net_g_latest.pth")
    assert config["use_aiem"] is False and config["use_dbca"] is False and config["encoder_skips"] is True
    assert state["main_decode.skip_dict.Level_1.weight"].abs().sum() > 0  # trained away from zero
    assert not any(k.startswith(("main_decode.attn", "multiscale_encoder.blocks.3")) for k in state)
    stage1 = params(ckpt1, "params_ema")
    assert torch.equal(state["out_conv.weight"], stage1["out_conv.weight"])


def test_stage2_init_from_takes_trained_parts_but_keeps_stage1_codebook(tmp_path):
    run_training(tiny(1, tmp_path, "train.total_iter=2", "val.every=2", "logging.save_every=2"), device="cpu")
    ckpt1 = tmp_path / "tiny-stage1" / "models" / "net_g_latest.pth"
    start = f"stage2.stage1_checkpoint={ckpt1.as_posix()}"
    run_training(tiny(2, tmp_path, "name=first", "train.total_iter=2", "val.every=2", "logging.save_every=2",
                      start), device="cpu")
    earlier = params(tmp_path / "first" / "models" / "net_g_latest.pth", "params_ema")
    # a stage 1 that moved on since: its codebook and G must win over the earlier run's copies
    moved = ckpt1.with_name("moved.pth")
    data = torch.load(ckpt1, map_location="cpu", weights_only=True)
    data["params_ema"] = {k: v + 1 if k.startswith(FROZEN_STAGE2) else v for k, v in data["params_ema"].items()}
    torch.save(data, moved)
    init = f"stage2.init_from={(tmp_path / 'first' / 'models' / 'net_g_latest.pth').as_posix()}"
    net = Trainer(tiny(2, tmp_path, "name=second", f"stage2.stage1_checkpoint={moved.as_posix()}", init),
                  device="cpu").net.state_dict()
    moved_state = data["params_ema"]
    for k, v in net.items():
        expected = moved_state[k] if k.startswith(FROZEN_STAGE2) else earlier[k]
        assert torch.equal(v, expected), k
    with pytest.raises(VQCNIRError, match="not a stage-2 checkpoint"):
        Trainer(tiny(2, tmp_path, "name=third", start, f"stage2.init_from={ckpt1.as_posix()}"), device="cpu")


def test_stage1_init_from_starts_from_an_earlier_stage1(tmp_path):
    run_training(tiny(1, tmp_path, "train.total_iter=2", "val.every=2", "logging.save_every=2"), device="cpu")
    earlier = tmp_path / "tiny-stage1" / "models" / "net_g_latest.pth"
    trainer = Trainer(tiny(1, tmp_path, "name=again", f"stage1.init_from={earlier.as_posix()}"), device="cpu")
    for k, v in trainer.net.state_dict().items():
        assert torch.equal(v, params(earlier, "params_ema")[k]), k
    assert trainer.stage.notes == (f"weights initialised from {earlier.as_posix()}",)
    run_training(tiny(2, tmp_path, "train.total_iter=2", "val.every=2", "logging.save_every=2",
                      f"stage2.stage1_checkpoint={earlier.as_posix()}"), device="cpu")
    restorer = tmp_path / "tiny-stage2" / "models" / "net_g_latest.pth"
    with pytest.raises(VQCNIRError, match="does not fit the model"):  # a stage-2 file is no stage-1 start
        Trainer(tiny(1, tmp_path, "name=wrong", f"stage1.init_from={restorer.as_posix()}"), device="cpu")
    with pytest.raises(VQCNIRError, match="a stage-2 run starts from stage2.init_from"):
        tiny(2, tmp_path, f"stage2.stage1_checkpoint={earlier.as_posix()}", f"stage1.init_from={earlier.as_posix()}")


def test_stage2_keeps_stage1s_upsampling(tmp_path):
    """The mode is in no tensor: stage 2 must be asked for stage 1's, else it would restore
    through a G that differs from the one stage 1 trained."""
    from vqcnir.nn import VQGAN
    from vqcnir.weights import save_checkpoint

    config = load_config("tiny-stage1", ["model.upsample=bilinear"]).model.network_config()
    save_checkpoint(tmp_path / "s1.pth", VQGAN(config).state_dict(), config)
    start = f"stage2.stage1_checkpoint={(tmp_path / 's1.pth').as_posix()}"
    net = Trainer(tiny(2, tmp_path, start, "model.upsample=bilinear"), device="cpu").net
    assert {m.mode for m in net.modules() if isinstance(m, torch.nn.Upsample)} == {"bilinear"}
    with pytest.raises(VQCNIRError, match=r"upsample=nearest \(the checkpoint has bilinear\)"):
        Trainer(tiny(2, tmp_path, "name=second", start), device="cpu")


def test_stage2_refuses_a_wrong_start(tmp_path):
    with pytest.raises(VQCNIRError, match="not found"):
        Trainer(tiny(2, tmp_path, "stage2.stage1_checkpoint=missing.pth"), device="cpu")


def test_stage2_start_is_checked_by_the_checkpoint_rules_of_weights(tmp_path):
    """A stage-2 file or a stage-1 file that lacks a tensor is one clear error, not a traceback."""
    from vqcnir.nn import VQCNIR, VQGAN
    from vqcnir.weights import save_checkpoint

    config = load_config("tiny-stage1").model.network_config()
    save_checkpoint(tmp_path / "s2.pth", VQCNIR(config).state_dict(), config)
    with pytest.raises(VQCNIRError, match="this is a stage-2 checkpoint"):
        Trainer(tiny(2, tmp_path, f"stage2.stage1_checkpoint={(tmp_path / 's2.pth').as_posix()}"), device="cpu")
    state = VQGAN(config).state_dict()
    state.pop(next(k for k in state if k.startswith("decoder_group.")))
    save_checkpoint(tmp_path / "s1.pth", state, config)
    with pytest.raises(VQCNIRError, match="does not fit the model: 1 missing"):
        Trainer(tiny(2, tmp_path, "name=second", f"stage2.stage1_checkpoint={(tmp_path / 's1.pth').as_posix()}"),
                device="cpu")


def _pairs(root: Path, n: int, size: int = 24) -> tuple[Path, Path]:
    rng = np.random.default_rng(n)
    for side in ("night", "gt"):
        (root / side).mkdir(parents=True)
    for i in range(n):
        gt = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(gt).save(root / "gt" / f"{i:02d}.png")
        Image.fromarray(gt // 4).save(root / "night" / f"{i:02d}.png")
    return root / "night", root / "gt"


def test_a_fixed_validation_set_replaces_the_held_out_split(tmp_path):
    from vqcnir.train.data import build_datasets

    night, gt = _pairs(tmp_path / "train", 6)
    val_night, val_gt = _pairs(tmp_path / "val", 5)
    source = ("data.kind=paired", f"data.night_dir={night.as_posix()}", f"data.gt_dir={gt.as_posix()}")
    train, val = build_datasets(tiny(2, tmp_path, *source, "stage2.stage1_checkpoint=x"))
    assert len(train) + len(val) == 6  # held out of the training pairs

    fixed = (f"val.night_dir={val_night.as_posix()}", f"val.gt_dir={val_gt.as_posix()}", "val.num_images=3")
    train, val = build_datasets(tiny(2, tmp_path, *source, *fixed, "stage2.stage1_checkpoint=x"))
    assert len(train) == 6  # every training pair is trained on
    assert [val.indices, len(val)] == [[0, 2, 4], 3]  # spread over the folder
    assert torch.equal(val[1]["gt"], build_datasets(tiny(2, tmp_path, *source, *fixed[:2], "val.num_images=5",
                                                          "stage2.stage1_checkpoint=x"))[1][2]["gt"])

    with pytest.raises(VQCNIRError, match="val.night_dir and val.gt_dir go together"):
        tiny(2, tmp_path, *source, fixed[0], "stage2.stage1_checkpoint=x")
    run_training(tiny(1, tmp_path, *source, *fixed, "train.total_iter=2", "val.every=2"), device="cpu")
    log = (tmp_path / "tiny-stage1" / "log.txt").read_text()
    assert "6 training / 3 validation items" in log and "validation @ 2: psnr" in log


def test_validation_scores_gt_mean_metrics(tmp_path, monkeypatch):
    """gt_mean_psnr: PSNR after each image's brightness is taken from its ground truth, so a
    restorer that is right but for its exposure scores as if it were right."""
    import types

    from vqcnir.train.validation import validate

    gt = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25
    net = types.SimpleNamespace(eval=lambda: None, train=lambda mode: None, training=False)
    cfg = tiny(2, tmp_path, "stage2.stage1_checkpoint=x", "val.metrics=[psnr,gt_mean_psnr]", "val.crop=null",
               "val.grid_images=0")
    trainer = types.SimpleNamespace(
        cfg=cfg, ema=None, net=net, device=torch.device("cpu"), val_set=[{"gt": gt, "night": gt * 0.8}],  # restored: the truth at 80 % brightness
        stage=types.SimpleNamespace(inputs=lambda item, g, move: move(item["night"])),
        autocast=lambda: torch.autocast("cpu", enabled=False))
    import vqcnir.train.validation as validation

    monkeypatch.setattr(validation, "_run_padded", lambda net, x: x)  # the network's output is its input
    scores = validate(trainer, 1)
    assert scores["psnr"] < 25 and scores["gt_mean_psnr"] > 60
    with pytest.raises(VQCNIRError, match="'gt_mean_niqe' is not a full-reference metric"):
        tiny(2, tmp_path, "stage2.stage1_checkpoint=x", "val.metrics=[psnr,gt_mean_niqe]")


# ----------------------------------------------------------------------------- resume
def test_resume_equals_uninterrupted_and_survives_a_broken_save(tmp_path):
    opts = ("train.total_iter=8", "logging.save_every=4", "val.every=4", "codebook.restart_every=3")
    run_training(tiny(1, tmp_path / "a", *opts), device="cpu")

    with pytest.raises(VQCNIRError, match="already exists"):
        Trainer(tiny(1, tmp_path / "a", *opts), device="cpu")

    run_training(tiny(1, tmp_path / "b", *opts, "train.total_iter=4"), device="cpu")
    states = tmp_path / "b" / "tiny-stage1" / "training_states"
    # a run killed while saving: a half-written temporary file and a damaged newer state
    (states / ".6.state.abc.tmp").write_bytes(b"partial")
    (states / "6.state").write_bytes(b"truncated")
    run_training(tiny(1, tmp_path / "b", *opts), resume=True, device="cpu")
    assert "skipped damaged training state" in (states.parent / "log.txt").read_text()

    a = torch.load(tmp_path / "a/tiny-stage1/training_states/8.state", weights_only=True)
    b = torch.load(states / "8.state", weights_only=True)
    for key in ("net_g", "net_ema", "net_d"):
        assert a[key].keys() == b[key].keys()
        for k in a[key]:
            assert torch.equal(a[key][k], b[key][k]), (key, k)
    assert a["opt_g"]["state"][0]["step"] == b["opt_g"]["state"][0]["step"] == 8


def test_resume_follows_a_changed_schedule(tmp_path):
    # a saved scheduler remembers its own milestones; the resumed run must obey the new config
    base = ("train.total_iter=4", "logging.save_every=4", "val.every=100", "train.optim_g.lr=1e-3",
            "train.scheduler.milestones=[100]")
    run_training(tiny(1, tmp_path, *base), device="cpu")
    changed = (*base[1:], "train.total_iter=6", "train.optim_g.lr=4e-3", "train.scheduler.milestones=[3,5]")
    trainer = Trainer(tiny(1, tmp_path, *changed), resume=True, device="cpu")
    try:
        assert trainer.start_iter == 4
        assert trainer.opt_g.param_groups[0]["lr"] == pytest.approx(2e-3)  # 4e-3 halved once, at 3
        trainer.fit()
        assert trainer.opt_g.param_groups[0]["lr"] == pytest.approx(1e-3)  # and again at 5
    finally:
        trainer.close()
    log = (tmp_path / "tiny-stage1" / "log.txt").read_text()
    assert "learning rate follows this config's schedule from iteration 4: G 0.001 -> 0.002" in log


def test_time_limit_stops_with_a_resumable_state(tmp_path, capsys):
    opts = ("train.total_iter=6", "logging.save_every=4", "val.every=100")
    # a limit already spent: one iteration runs, its state is saved although 1 is no save point
    r = run_training(tiny(1, tmp_path, *opts), device="cpu", time_limit=0)
    exp = tmp_path / "tiny-stage1"
    assert (r["iter"], r["stopped_early"]) == (1, True)
    assert (exp / "training_states" / "1.state").is_file() and (exp / "models" / "net_g_1.pth").is_file()
    assert "stopped tiny-stage1 at iteration 1 of 6: the time limit was reached" in (exp / "log.txt").read_text()
    r = run_training(tiny(1, tmp_path, *opts), resume=True, device="cpu", time_limit=3600)
    assert (r["iter"], r["stopped_early"]) == (6, False)

    from vqcnir.train.cli import main

    capsys.readouterr()
    assert main(["-c", "tiny-stage1", "--time-limit", "-5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --time-limit -5: give the minutes as a number of 0 or more"]


def _signal_at(monkeypatch, iteration: int, *signals: int) -> None:
    """Send this process ``signals`` at the end of ``iteration``, as a Ctrl+C would."""
    from vqcnir.train.stage1 import Stage1

    after = Stage1.after_iteration

    def then_signal(self, t, it, batch):
        after(self, t, it, batch)
        if it == iteration:
            for s in signals:
                os.kill(os.getpid(), s)

    monkeypatch.setattr(Stage1, "after_iteration", then_signal)


def test_ctrl_c_stops_at_the_next_iteration_with_a_resumable_state(tmp_path, monkeypatch, capsys):
    opts = ("train.total_iter=8", "logging.save_every=100", "val.every=100")
    before = signal.getsignal(signal.SIGINT)
    # SIGINT then SIGTERM at once, as one Ctrl+C reaches a torchrun worker: one request
    _signal_at(monkeypatch, 3, signal.SIGINT, signal.SIGTERM)
    r = run_training(tiny(1, tmp_path, *opts), device="cpu")
    exp = tmp_path / "tiny-stage1"
    assert (r["iter"], r["stopped_early"], r["stop_signal"]) == (3, True, signal.SIGINT)
    assert [p.name for p in (exp / "training_states").iterdir()] == ["3.state"]
    assert "stopped tiny-stage1 at iteration 3 of 8: SIGINT asked it to stop; continue with --resume" \
        in (exp / "log.txt").read_text()
    assert "SIGINT: stopping after this iteration" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is before  # the handlers are put back
    monkeypatch.undo()
    r = run_training(tiny(1, tmp_path, *opts), resume=True, device="cpu")
    assert (r["iter"], r["stopped_early"], r["stop_signal"]) == (8, False, None)


def test_a_second_ctrl_c_quits_at_once_and_the_command_exits_as_a_signal_does(tmp_path, monkeypatch, capsys):
    from vqcnir.train import signals
    from vqcnir.train.cli import main

    opts = ["train.total_iter=8", "logging.save_every=100", "val.every=100", "data.crop=16", "val.crop=16",
            "val.num_images=2", "data.synth_length=32"]
    monkeypatch.setattr(signals, "SAME_REQUEST_S", -1.0)  # any second signal is a new request
    _signal_at(monkeypatch, 2, signal.SIGINT, signal.SIGINT)
    assert main(["-c", "tiny-stage1", "--device", "cpu", "--opt", f"experiments_root={tmp_path.as_posix()}",
                 *opts]) == 130  # the CLI's KeyboardInterrupt: no state saved
    assert not list((tmp_path / "tiny-stage1" / "training_states").iterdir())
    monkeypatch.undo()
    _signal_at(monkeypatch, 2, signal.SIGTERM)
    assert main(["-c", "tiny-stage1", "--device", "cpu", "--resume", "--opt",
                 f"experiments_root={tmp_path.as_posix()}", *opts]) == 143
    assert [p.name for p in (tmp_path / "tiny-stage1" / "training_states").iterdir()] == ["2.state"]
    err = capsys.readouterr().err
    assert "Traceback" not in err and "SIGTERM asked it to stop" in err


# ----------------------------------------------------------------------------- robustness
def test_non_finite_loss_skips_the_step(tmp_path):
    trainer = Trainer(tiny(1, tmp_path), device="cpu")
    try:
        before = {k: v.clone() for k, v in trainer.net.state_dict().items()}
        batch = trainer.train_set[0]
        gt = torch.stack([batch["gt"]] * 4)
        gt[0, 0, 0, 0] = float("nan")
        trainer.train_step({"gt": gt, "night": gt}, 0)
        assert trainer.skipped >= 1
        after = trainer.net.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)
        trainer.train_step({"gt": gt.nan_to_num(0.5), "night": gt}, 1)  # a good batch trains again
        assert not all(torch.equal(before[k], trainer.net.state_dict()[k]) for k in before)
    finally:
        trainer.close()


# ----------------------------------------------------------------------------- DDP
def test_two_process_ddp_matches_one_process(tmp_path):
    opts = ["train.total_iter=3", "logging.save_every=3", "val.every=3", "data.batch_size=4",
            "codebook.restart_dead_codes=false"]
    run_training(tiny(1, tmp_path / "one", *opts), device="cpu")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "vqcnir.train", "-c", "tiny-stage1", "--device", "cpu", "--opt",
           f"experiments_root={(tmp_path / 'two').as_posix()}", "data.crop=16", "val.crop=16",
           "val.num_images=2", "data.synth_length=32", *opts]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 process(es)" in (tmp_path / "two/tiny-stage1/log.txt").read_text()
    one = params(tmp_path / "one/tiny-stage1/models/net_g_latest.pth")
    two = params(tmp_path / "two/tiny-stage1/models/net_g_latest.pth")
    start = torch.load(tmp_path / "one/tiny-stage1/training_states/3.state", weights_only=True)
    moved = 0
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=1e-4, atol=2e-5)
    print("largest 1- vs 2-process difference:", max((two[k] - one[k]).abs().max().item() for k in one))
    # and the weights did move (the comparison is not trivially true)
    fresh = Trainer(tiny(1, tmp_path / "fresh", *opts), device="cpu")
    try:
        moved = sum(not torch.equal(v, one[k]) for k, v in fresh.net.state_dict().items())
    finally:
        fresh.close()
    assert moved > 10 and start["iter"] == 3


def test_two_processes_stop_together_at_the_time_limit(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "vqcnir.train", "-c", "tiny-stage1", "--device", "cpu", "--time-limit", "0", "--opt",
           f"experiments_root={tmp_path.as_posix()}", "data.crop=16", "val.crop=16", "val.num_images=2",
           "data.synth_length=32", "data.batch_size=4", "train.total_iter=6", "val.every=100"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    exp = tmp_path / "tiny-stage1"
    assert "stopped tiny-stage1 at iteration 1 of 6" in (exp / "log.txt").read_text()
    assert [p.name for p in (exp / "training_states").iterdir()] == ["1.state"]


def test_ctrl_c_under_torchrun_stops_every_process_with_a_state_saved(tmp_path):
    """Ctrl+C in a terminal signals the whole process group: torchrun, its workers and their
    loader processes."""
    import time

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "vqcnir.train", "-c", "tiny-stage1", "--device", "cpu", "--opt",
           f"experiments_root={tmp_path.as_posix()}", "data.crop=16", "val.crop=16", "val.num_images=2",
           "data.synth_length=32", "data.batch_size=4", "data.num_workers=1", "train.total_iter=100000",
           "val.every=100000", "logging.print_every=1", "logging.save_every=100000"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    log = tmp_path / "tiny-stage1" / "log.txt"
    try:
        deadline = time.monotonic() + 240
        while not (log.is_file() and "iter 3/" in log.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()[-3000:]
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)
        out = proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    stopped = re.findall(r"stopped tiny-stage1 at iteration (\d+) of 100000: SIGINT asked it to stop",
                         log.read_text())
    assert stopped, out[-3000:]
    states = [p.name for p in (tmp_path / "tiny-stage1" / "training_states").iterdir()]
    assert states == [f"{stopped[0]}.state"] and "exited unexpectedly" not in out

def test_two_processes_lower_the_learning_rate_and_stop_together_at_a_plateau(tmp_path):
    """Only rank 0 validates; every rank takes the plateau's drop and its stop (the drop once
    crashed the rank that had no validation to quote)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    # a learning rate below float32 resolution: the weights never change, nor does validation, so
    # the plateau comes at the first chance
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "vqcnir.train", "-c", "tiny-stage1", "--device", "cpu", "--opt",
           f"experiments_root={tmp_path.as_posix()}", "data.crop=16", "val.crop=16", "val.num_images=2",
           "data.synth_length=32", "data.batch_size=4", "train.total_iter=20", "val.every=1",
           "train.patience=1", "train.plateau_drops=1", "train.optim_g.lr=1e-30", "train.optim_d.lr=1e-30",
           "codebook.restart_dead_codes=false", "logging.save_every=100"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    log = (tmp_path / "tiny-stage1" / "log.txt").read_text()
    assert "from iteration 2 (drop 1 of 1, train.plateau_drops)" in log
    assert "finished tiny-stage1 at iteration 3" in log


def test_photo_folder_sources(tmp_path):
    """Stage 1 on a folder of sharp photos, stage 2 on pairs vqcnir.data synthesises from it."""
    _write_pairs(tmp_path / "photos", n=6, size=48)
    photos = (tmp_path / "photos" / "gt").as_posix()
    short = ("train.total_iter=2", "val.every=2", "logging.save_every=2", "data.batch_size=2",
             "data.val_fraction=0.3", f"data.root={photos}")
    run_training(tiny(1, tmp_path, *short, "data.kind=sharp"), device="cpu")
    ckpt1 = tmp_path / "tiny-stage1" / "models" / "net_g_latest.pth"
    run_training(tiny(2, tmp_path, *short, "data.kind=synth", f"stage2.stage1_checkpoint={ckpt1.as_posix()}"),
                 device="cpu")
    assert (tmp_path / "tiny-stage2" / "visualization" / "val_00000002.png").is_file()


def test_stage2_resume_equals_uninterrupted(tmp_path):
    run_training(tiny(1, tmp_path, "train.total_iter=2", "val.every=2", "logging.save_every=2"), device="cpu")
    ckpt1 = (tmp_path / "tiny-stage1" / "models" / "net_g_latest.pth").as_posix()
    opts = ("train.total_iter=4", "logging.save_every=2", "val.every=2", "logging.keep_states=1",
            f"stage2.stage1_checkpoint={ckpt1}")
    run_training(tiny(2, tmp_path / "a", *opts), device="cpu")
    run_training(tiny(2, tmp_path / "b", *opts, "train.total_iter=2"), device="cpu")
    run_training(tiny(2, tmp_path / "b", *opts), resume=True, device="cpu")
    states = sorted(p.name for p in (tmp_path / "b/tiny-stage2/training_states").iterdir())
    assert states == ["4.state"]  # keep_states=1 pruned the older one
    a = params(tmp_path / "a/tiny-stage2/models/net_g_latest.pth", "params_ema")
    b = params(tmp_path / "b/tiny-stage2/models/net_g_latest.pth", "params_ema")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cpu_budget_ends_the_run_and_a_resume_keeps_counting(tmp_path):
    opts = ("train.total_iter=50", "logging.save_every=100", "val.every=100", "data.num_workers=0")
    # a budget smaller than one iteration's CPU time: the run ends after one, saved and finished
    r = run_training(tiny(1, tmp_path, *opts, "train.cpu_budget_min=0.00001"), device="cpu")
    exp = tmp_path / "tiny-stage1"
    assert (r["iter"], r["budget_spent"], r["stopped_early"]) == (1, True, False)
    assert r["cpu_seconds"] > 0 and (exp / "training_states" / "1.state").is_file()
    assert "its CPU budget of 1e-05 min is used" in (exp / "log.txt").read_text()
    saved = torch.load(exp / "training_states" / "1.state", weights_only=False)["cpu_seconds"]
    assert 0 < saved <= r["cpu_seconds"]
    # resumed with a larger budget: the CPU time already spent still counts
    r = run_training(tiny(1, tmp_path, *opts, "train.cpu_budget_min=10"), resume=True, device="cpu")
    assert (r["iter"], r["budget_spent"]) == (50, False) and r["cpu_seconds"] > saved
    with pytest.raises(VQCNIRError, match="cpu_budget_min must be a positive"):
        tiny(1, tmp_path, "train.cpu_budget_min=0")


def test_patience_ends_the_run_when_validation_stops_improving(tmp_path, monkeypatch):
    import vqcnir.train.loop as loop

    scores = iter([20.0, 21.0, 20.5, 20.9, 25.0, 30.0])  # best at 2; 3 and 4 do not beat it
    monkeypatch.setattr(loop, "validate", lambda trainer, it: {"psnr": next(scores)})
    opts = ("train.total_iter=50", "logging.save_every=100", "val.every=1", "data.num_workers=0")
    r = run_training(tiny(1, tmp_path, *opts, "train.patience=2"), device="cpu")
    exp = tmp_path / "tiny-stage1"
    assert (r["iter"], r["plateaued"], r["best"]["iter"]) == (4, True, 2)
    assert (exp / "training_states" / "4.state").is_file()  # resumable where it stopped
    assert "has not beaten its best (21.0000 @ 2) for 2 validations" in (exp / "log.txt").read_text()
    with pytest.raises(VQCNIRError, match="train.patience must be"):
        tiny(1, tmp_path, "train.patience=0")


def test_plateau_drops_lower_the_learning_rate_before_the_run_ends(tmp_path, monkeypatch):
    import vqcnir.train.loop as loop

    # best at 2; plateau at 4 -> lr halved, patience counts again from 4; 5 and 6 do not beat
    # 21.0 -> the run ends at 6 (without the drop it would have ended at 4)
    scores = iter([20.0, 21.0, 20.5, 20.9, 20.8, 20.7, 30.0])
    monkeypatch.setattr(loop, "validate", lambda trainer, it: {"psnr": next(scores)})
    opts = ("train.total_iter=50", "logging.save_every=100", "val.every=1", "data.num_workers=0",
            "train.patience=2", "train.plateau_drops=1", "train.scheduler.gamma=0.5", "train.optim_g.lr=1e-3")
    r = run_training(tiny(1, tmp_path, *opts), device="cpu")
    exp = tmp_path / "tiny-stage1"
    assert (r["iter"], r["plateaued"]) == (6, True)
    log = (exp / "log.txt").read_text()
    assert "learning rates x0.5 from iteration 4 (drop 1 of 1, train.plateau_drops)" in log
    state = torch.load(exp / "training_states" / "6.state", weights_only=False)
    assert state["lr_drops"] == {"count": 1, "iter": 4}
    assert state["opt_g"]["param_groups"][0]["lr"] == pytest.approx(5e-4)
    # a resume keeps the drop: the rate stays lowered (the schedule alone would say 1e-3)
    monkeypatch.setattr(loop, "validate", lambda trainer, it: {"psnr": 10.0})
    run_training(tiny(1, tmp_path, *opts[1:], "train.total_iter=7"), resume=True, device="cpu")
    state = torch.load(exp / "training_states" / "7.state", weights_only=False)
    assert state["opt_g"]["param_groups"][0]["lr"] == pytest.approx(5e-4)
    with pytest.raises(VQCNIRError, match="plateau_drops needs train.patience"):
        tiny(1, tmp_path, "train.plateau_drops=1")


def test_charbonnier_and_frequency_losses():
    from vqcnir.train.losses import frequency_loss, pixel_loss

    gt = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert pixel_loss(gt, gt, "charbonnier").item() == pytest.approx(1e-3)
    out = gt + 0.1
    assert pixel_loss(out, gt, "charbonnier").item() == pytest.approx((0.01 + 1e-6) ** 0.5, rel=1e-4)
    assert frequency_loss(gt, gt).item() == 0
    # a constant offset lives only in the DC term; noise of the same L1 spreads over all of them
    assert frequency_loss(out, gt).item() < frequency_loss(gt + 0.1 * torch.randn_like(gt).sign(), gt).item()
    # orthonormal: the same per-pixel error gives the same loss at twice the size
    big = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    noise = lambda x: 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))  # noqa: E731
    ratio = frequency_loss(big + noise(big), big) / frequency_loss(gt + noise(gt), gt)
    assert 0.8 < ratio.item() < 1.25
    r = load_config("tiny-stage2", ["train.losses.pixel_kind=charbonnier", "train.losses.frequency=0.1"])
    assert (r.train.losses.pixel_kind, r.train.losses.frequency) == ("charbonnier", 0.1)
    with pytest.raises(VQCNIRError, match="pixel_kind 'l2' is not one of l1, charbonnier"):
        load_config("tiny-stage2", ["train.losses.pixel_kind=l2"])


def test_grid_loss_weighs_steps_across_the_code_grid_only(tmp_path):
    from vqcnir.train.losses import grid_step_loss

    gt = torch.rand(2, 3, 16, 24, generator=torch.Generator().manual_seed(0))
    blocks = torch.rand(2, 3, 4, 6, generator=torch.Generator().manual_seed(1))
    mosaic = blocks.repeat_interleave(4, -2).repeat_interleave(4, -1)   # constant on each 4-px block
    assert grid_step_loss(gt, gt, 4).item() == 0
    assert grid_step_loss(gt + 0.1 * mosaic, gt, 4).item() > 0.02
    # the same mosaic shifted by 2 px steps only inside the 4-px blocks: nothing to weigh
    shifted = torch.roll(mosaic, (2, 2), (-2, -1))
    assert grid_step_loss(gt + 0.1 * shifted, gt, 4).item() == pytest.approx(0, abs=1e-7)
    # an error that grows evenly (as blur's does across an edge) is not the grid's
    ramp = torch.linspace(0, 0.3, 24).expand(2, 3, 16, 24) + torch.linspace(0, 0.2, 16)[:, None]
    assert grid_step_loss(gt + ramp, gt, 4).item() == pytest.approx(0, abs=1e-6)
    assert grid_step_loss(gt + 0.1 * mosaic, gt, 8).item() > 0.01  # and the 8-px grid of the 1/8 codebook
    # in training: logged, and only with a weight
    r = run_training(tiny(1, tmp_path, "train.total_iter=1", "train.losses.grid=0.5", "logging.print_every=1"),
                     device="cpu")
    assert "l_grid" in (tmp_path / "tiny-stage1" / "log.txt").read_text() and r["iter"] == 1
    with pytest.raises(VQCNIRError, match="train.losses.grid must be >= 0"):
        load_config("tiny-stage2", ["train.losses.grid=-1"])


def test_resume_of_a_run_killed_before_its_first_save_starts_it(tmp_path, capsys):
    opts = ("train.total_iter=2", "logging.save_every=2", "val.every=100")
    exp = tmp_path / "tiny-stage1"
    for sub in ("models", "training_states", "visualization"):  # what a run killed at iteration 1 leaves
        (exp / sub).mkdir(parents=True)
    (exp / "log.txt").write_text("started tiny-stage1 ...\n")
    (exp / "training_states" / ".2.state.123-0badc0de.tmp").write_bytes(b"partial")
    with pytest.raises(VQCNIRError, match="already exists: pass --resume"):
        Trainer(tiny(1, tmp_path, *opts), device="cpu")
    r = run_training(tiny(1, tmp_path, *opts), resume=True, device="cpu")
    assert r["iter"] == 2 and (exp / "training_states" / "2.state").is_file()
    assert "no training state was saved): starting at iteration 0" in (exp / "log.txt").read_text()
    assert "starting at iteration 0" in capsys.readouterr().err


def test_resume_never_restarts_over_saved_models(tmp_path):
    exp = tmp_path / "tiny-stage1"
    (exp / "models").mkdir(parents=True)
    (exp / "models" / "net_g_4.pth").write_bytes(b"a model the user keeps")
    with pytest.raises(VQCNIRError, match="saved models but no training state; move it away"):
        Trainer(tiny(1, tmp_path, "train.total_iter=2"), resume=True, device="cpu")
    assert (exp / "models" / "net_g_4.pth").read_bytes() == b"a model the user keeps"
