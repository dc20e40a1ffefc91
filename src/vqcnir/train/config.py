"""The training config: a schema of nested dataclasses, read from YAML, overridable key by key.

Every key is checked: an unknown or mistyped key, a value of the wrong type or out of range is a
``VQCNIRError`` naming the key (with a "did you mean" hint), never a silently ignored default.

    cfg = load_config("tiny-stage1", overrides=["train.total_iter=50", "model.use_aiem=false"])
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Optional

import yaml

from ..errors import VQCNIRError
from ..nn import PRESETS, VQCNIRConfig

DATA_KINDS = ("synthetic", "sharp", "synth", "paired", "lolblur")
TRAIN_PRECISIONS = ("auto", "fp32", "bf16")  # train.precision; restore has its own


def _network_config(self) -> VQCNIRConfig:
    """The ``VQCNIRConfig`` this section describes: the preset with the fields set here changed."""
    changes = {f.name: getattr(self, f.name) for f in dataclasses.fields(VQCNIRConfig)
               if getattr(self, f.name) is not None}
    try:
        return PRESETS[self.preset].with_(**changes)
    except (ValueError, TypeError) as e:
        raise VQCNIRError(f"model: {e}") from None


# The network: a preset of ``vqcnir.nn`` plus any ``VQCNIRConfig`` field to change (null = the
# preset's value), e.g. ``model.use_aiem=false``. In stage 2 the widths and the codebook come from
# the stage-1 checkpoint; the stage-2 fields (num_aiem, aiem_*, deform_groups, use_aiem, use_dbca,
# dbca_levels, encoder_skips) are taken from here.
ModelSection = dataclasses.make_dataclass(
    "ModelSection",
    [("preset", str, field(default="paper"))]
    + [(f.name, Optional[tp], field(default=None))
       for f, tp in ((f, typing.get_type_hints(VQCNIRConfig)[f.name]) for f in dataclasses.fields(VQCNIRConfig))],
    namespace={"network_config": _network_config},
)
ModelSection.__module__ = __name__


@dataclass
class DataSection:
    """Where training pairs come from.

    kind: ``synthetic`` (procedural images, no files: tests and benchmarks), ``sharp`` (a folder
    of sharp photos; stage 1 only), ``synth`` (night/blur pairs synthesised on the fly from a
    folder of sharp photos), ``paired`` (night_dir + gt_dir), ``lolblur`` (LOL-Blur's layout under
    root). The validation split is held out of the same source, by a seeded split."""

    kind: str = "synth"
    root: Optional[str] = None       # sharp-photo folder (sharp, synth) or LOL-Blur root
    night_dir: Optional[str] = None  # paired
    gt_dir: Optional[str] = None     # paired
    night_folder: str = "low_blur_noise"   # lolblur
    gt_folder: str = "high_sharp_scaled"   # lolblur
    crop: int = 256
    batch_size: int = 8              # global batch, over all processes
    num_workers: int = 4             # loader processes per training process
    val_fraction: float = 0.05
    split_seed: int = 0
    synth_length: int = 10000        # items per epoch for kind=synth and kind=synthetic
    degrade: dict = field(default_factory=dict)  # kind=synth: vqcnir.data DegradeConfig overrides


@dataclass
class LossSection:
    pixel: float = 1.0
    codebook: float = 1.0            # stage 1: codebook + commitment; stage 2: code alignment
    perceptual: float = 1.0
    adversarial: float = 0.1
    perceptual_net: str = "auto"     # auto | lpips_vgg | stlpips_vgg | none
    pixel_kind: str = "l1"           # l1 | charbonnier (sqrt(d^2 + 1e-6), smooth at 0)
    frequency: float = 0.0           # weight of an L1 loss on the 2-D FFT (real and imaginary parts)
    grid: float = 0.0                # weight of an L1 loss on the steps across the code grid's lines
    gan_start_iter: int = 0          # iterations before the discriminator is used


@dataclass
class OptimSection:
    lr: float = 1e-4
    betas: list = field(default_factory=lambda: [0.9, 0.99])
    weight_decay: float = 0.0


@dataclass
class SchedulerSection:
    milestones: list = field(default_factory=lambda: [250000, 400000])
    gamma: float = 0.5


@dataclass
class TrainSection:
    total_iter: int = 500000
    optim_g: OptimSection = field(default_factory=OptimSection)
    optim_d: OptimSection = field(default_factory=lambda: OptimSection(lr=4e-4))
    scheduler: SchedulerSection = field(default_factory=SchedulerSection)
    losses: LossSection = field(default_factory=LossSection)
    grad_clip: Optional[float] = 1.0        # max global grad norm; null: no clipping
    ema_decay: float = 0.999                # 0: no EMA (params_ema = params)
    precision: str = "auto"                 # auto (bf16 on GPU, fp32 on CPU) | fp32 | bf16
    disc_width: int = 64
    # stop once the run has used this many CPU-minutes (this process and its loader workers,
    # counted across resumes): a fixed budget that a busy, shared machine does not distort
    cpu_budget_min: Optional[float] = None
    # stop once this many validations in a row have not beaten the best one (val.best_metric):
    # train for as long as validation keeps improving
    patience: Optional[int] = None
    # on such a plateau, first lower the learning rates by scheduler.gamma and go on, up to this
    # many times (a rate that has stopped helping often helps again once lowered); the run ends
    # at the plateau after the last drop
    plateau_drops: int = 0


@dataclass
class CodebookSection:
    """Stage 1: dead-code monitoring (usage and perplexity are always logged)."""

    restart_dead_codes: bool = False
    restart_every: int = 1000               # iterations between restarts (and the usage window)
    restart_noise: float = 0.01             # relative noise added to the encoder vectors copied in


@dataclass
class Stage1Section:
    # optional stage-1 checkpoint of the same size whose weights start this run: continue a
    # stage 1 whose training state is gone (a fresh optimizer, the same network)
    init_from: Optional[str] = None


@dataclass
class Stage2Section:
    stage1_checkpoint: Optional[str] = None  # required for stage 2
    freeze_out_conv: bool = False
    # optional stage-2 checkpoint of the same size whose trained parts (encoder, AIEM, D, out_conv)
    # start this run: fine-tune a restorer against a retrained or longer-trained stage 1
    init_from: Optional[str] = None


@dataclass
class ValSection:
    every: int = 5000
    num_images: int = 16
    # a fixed validation set of pairs (e.g. a held-out test split), matched by relative path; with
    # it the whole training source is trained on, and data.val_fraction is not used
    night_dir: Optional[str] = None
    gt_dir: Optional[str] = None
    crop: Optional[int] = 256               # centre crop (multiple of 8); null: whole images
    # full-reference metrics of vqcnir.metrics, e.g. gt_mean_psnr: PSNR after taking each image's
    # brightness from its ground truth (the GT-mean protocol)
    metrics: list = field(default_factory=lambda: ["psnr", "ssim"])
    grid_images: int = 4
    use_ema: bool = True
    best_metric: str = "psnr"


@dataclass
class LoggingSection:
    print_every: int = 100
    save_every: int = 5000
    keep_states: int = 3                    # training states kept on disk (older ones pruned)
    tensorboard: bool = True                # event files under <experiment>/tb (if installed)
    progress_bar: bool = True


@dataclass
class TrainConfig:
    name: str = "experiment"
    stage: int = 1
    seed: int = 0
    experiments_root: str = "experiments"
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    train: TrainSection = field(default_factory=TrainSection)
    codebook: CodebookSection = field(default_factory=CodebookSection)
    stage1: Stage1Section = field(default_factory=Stage1Section)
    stage2: Stage2Section = field(default_factory=Stage2Section)
    val: ValSection = field(default_factory=ValSection)
    logging: LoggingSection = field(default_factory=LoggingSection)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def experiment_dir(self) -> Path:
        return Path(self.experiments_root) / self.name


# ----------------------------------------------------------------------------- building / checks
def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; ints are accepted where floats are asked."""
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0], key)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise VQCNIRError(f"config key {key!r} must be a section (mapping), got {value!r}")
        return _build(tp, value, key + ".")
    if tp is bool:
        if not isinstance(value, bool):
            raise VQCNIRError(f"config key {key!r} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise VQCNIRError(f"config key {key!r} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise VQCNIRError(f"config key {key!r} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise VQCNIRError(f"config key {key!r} must be a string, got {value!r}")
        return value
    if tp is list:
        if not isinstance(value, (list, tuple)):
            raise VQCNIRError(f"config key {key!r} must be a list, got {value!r}")
        return list(value)
    if tp is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise VQCNIRError(f"config key {key!r} must be a mapping, got {value!r}")
        return dict(value)
    raise TypeError(f"unsupported config type {_type_name(tp)} for {key}")


def _unknown(key: str, known: list[str]) -> VQCNIRError:
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f" (known here: {', '.join(known)})"
    return VQCNIRError(f"unknown config key {key!r}{hint}")


def _build(cls, values: dict, prefix: str = ""):
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in names:
            raise _unknown(prefix + str(key), names)
        kwargs[key] = _coerce(value, hints[key], prefix + key)
    return cls(**kwargs)


def _set_path(tree: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise VQCNIRError(f"--opt {dotted}: {part!r} is a value, not a section")
        node = child
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """``key.sub=value`` -> (key path, YAML-parsed value)."""
    if "=" not in text:
        raise VQCNIRError(f"--opt {text!r}: expected key=value (e.g. train.total_iter=1000)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not p for p in key.split(".")):
        raise VQCNIRError(f"--opt {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key, value


def shipped_presets() -> list[str]:
    root = resources.files("vqcnir") / "configs"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def read_yaml(source: str) -> tuple[dict, str]:
    """A shipped preset name (``paper-stage1``) or a path -> (mapping, where it came from)."""
    path = Path(source)
    if path.is_file():
        where = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise VQCNIRError(f"{where}: not a text file; a config is YAML text") from None
        except OSError as e:
            raise VQCNIRError(f"{where}: cannot read the config ({e.strerror or e})") from None
    elif source in shipped_presets():
        text = (resources.files("vqcnir") / "configs" / f"{source}.yaml").read_text(encoding="utf-8")
        where = f"preset {source}"
    else:
        raise VQCNIRError(f"config {source!r} is neither a file nor a shipped preset "
                          f"({', '.join(shipped_presets())})")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        at = f" (line {line + 1})" if line is not None else ""
        raise VQCNIRError(f"{where}: not valid YAML{at}") from None
    if not isinstance(data, dict):
        raise VQCNIRError(f"{where}: expected a mapping of config sections at the top level")
    return data, where


def build_config(data: dict, overrides: list[str] = ()) -> TrainConfig:
    data = _deep_copy(data)
    for text in overrides:
        key, value = parse_override(text)
        _set_path(data, key, value)
    cfg = _build(TrainConfig, data)
    validate(cfg)
    return cfg


def load_config(source: str, overrides: list[str] = ()) -> TrainConfig:
    data, _ = read_yaml(source)
    return build_config(data, overrides)


def _deep_copy(d):
    if isinstance(d, dict):
        return {k: _deep_copy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deep_copy(v) for v in d]
    return d


def validate(cfg: TrainConfig) -> None:
    """Range and consistency checks that the types alone do not catch."""
    problems = []
    if cfg.stage not in (1, 2):
        problems.append(f"stage must be 1 or 2, not {cfg.stage}")
    if not cfg.name or "/" in cfg.name or "\\" in cfg.name or cfg.name in (".", ".."):
        problems.append(f"name {cfg.name!r} must be a plain folder name")
    if cfg.model.preset not in PRESETS:
        problems.append(f"model.preset {cfg.model.preset!r} is not one of {', '.join(PRESETS)}")
    else:
        cfg.model.network_config()  # raises on unknown VQCNIRConfig fields / bad combinations
    d = cfg.data
    if d.kind not in DATA_KINDS:
        problems.append(f"data.kind {d.kind!r} is not one of {', '.join(DATA_KINDS)}")
    if d.kind in ("sharp", "synth", "lolblur") and not d.root:
        problems.append(f"data.kind={d.kind} needs data.root")
    if d.kind == "paired" and not (d.night_dir and d.gt_dir):
        problems.append("data.kind=paired needs data.night_dir and data.gt_dir")
    if d.kind == "sharp" and cfg.stage == 2:
        problems.append("data.kind=sharp has no night images: stage 2 needs synth, paired or lolblur")
    if d.degrade:
        from ..data import DegradeConfig

        try:
            DegradeConfig.from_dict(d.degrade)
        except (VQCNIRError, TypeError, ValueError) as e:
            problems.append(f"data.degrade: {e}")
    if d.crop <= 0 or d.crop % 8:
        problems.append(f"data.crop must be a positive multiple of 8, not {d.crop}")
    if d.batch_size < 1:
        problems.append("data.batch_size must be at least 1")
    if d.num_workers < 0:
        problems.append("data.num_workers must be >= 0")
    if not 0.0 < d.val_fraction < 1.0:
        problems.append("data.val_fraction must be between 0 and 1")
    if bool(cfg.val.night_dir) != bool(cfg.val.gt_dir):
        problems.append("val.night_dir and val.gt_dir go together: give both folders, or neither")
    t = cfg.train
    if t.total_iter < 1:
        problems.append("train.total_iter must be at least 1")
    for name, o in (("optim_g", t.optim_g), ("optim_d", t.optim_d)):
        if o.lr <= 0:
            problems.append(f"train.{name}.lr must be positive")
        if len(o.betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in o.betas):
            problems.append(f"train.{name}.betas must be two numbers in [0, 1)")
    if not all(isinstance(m, int) and m > 0 for m in t.scheduler.milestones):
        problems.append("train.scheduler.milestones must be positive integers")
    if t.grad_clip is not None and t.grad_clip <= 0:
        problems.append("train.grad_clip must be positive or null")
    if not 0.0 <= t.ema_decay < 1.0:
        problems.append("train.ema_decay must be in [0, 1)")
    if t.precision not in TRAIN_PRECISIONS:
        problems.append(f"train.precision {t.precision!r} is not one of {', '.join(TRAIN_PRECISIONS)}")
    losses = t.losses
    for k in ("pixel", "codebook", "perceptual", "adversarial", "frequency", "grid"):
        if getattr(losses, k) < 0:
            problems.append(f"train.losses.{k} must be >= 0")
    from .losses import PERCEPTUAL_CHOICES, PIXEL_KINDS

    if losses.perceptual_net not in PERCEPTUAL_CHOICES:
        problems.append(f"train.losses.perceptual_net {losses.perceptual_net!r} is not one of "
                        f"{', '.join(PERCEPTUAL_CHOICES)}")
    if losses.pixel_kind not in PIXEL_KINDS:
        problems.append(f"train.losses.pixel_kind {losses.pixel_kind!r} is not one of {', '.join(PIXEL_KINDS)}")
    if t.cpu_budget_min is not None and not t.cpu_budget_min > 0:
        problems.append("train.cpu_budget_min must be a positive number of minutes (or null)")
    if t.patience is not None and not (isinstance(t.patience, int) and t.patience >= 1):
        problems.append("train.patience must be a whole number of validations >= 1 (or null)")
    if not (isinstance(t.plateau_drops, int) and t.plateau_drops >= 0):
        problems.append("train.plateau_drops must be a whole number >= 0")
    elif t.plateau_drops and t.patience is None:
        problems.append("train.plateau_drops needs train.patience (how many validations make a plateau)")
    if losses.perceptual > 0 and losses.perceptual_net == "none":
        problems.append("train.losses.perceptual > 0 needs a perceptual_net (or set the weight to 0)")
    if cfg.stage == 2 and not cfg.stage2.stage1_checkpoint:
        problems.append("stage 2 needs stage2.stage1_checkpoint (a checkpoint from stage 1)")
    if cfg.stage == 2 and cfg.stage1.init_from:
        problems.append("stage1.init_from starts a stage-1 run; a stage-2 run starts from stage2.init_from")
    v = cfg.val
    if v.crop is not None and (v.crop <= 0 or v.crop % 8):
        problems.append(f"val.crop must be a positive multiple of 8 or null, not {v.crop}")
    from ..metrics import SPECS

    for m in v.metrics:
        if m not in SPECS or not SPECS[m].reference:
            problems.append(f"val.metrics: {m!r} is not a full-reference metric of vqcnir.metrics")
    if v.best_metric not in v.metrics:
        problems.append(f"val.best_metric {v.best_metric!r} must be one of val.metrics")
    for k in ("every", "num_images"):
        if getattr(v, k) < 1:
            problems.append(f"val.{k} must be at least 1")
    lg = cfg.logging
    for k in ("print_every", "save_every", "keep_states"):
        if getattr(lg, k) < 1:
            problems.append(f"logging.{k} must be at least 1")
    if cfg.codebook.restart_every < 1:
        problems.append("codebook.restart_every must be at least 1")
    if problems:
        raise VQCNIRError("invalid training config: " + "; ".join(problems))
