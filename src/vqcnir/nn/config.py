"""One config dataclass for the network, with the paper's defaults and smaller presets."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

UPSAMPLE_MODES = ("nearest", "bilinear")


@dataclass(frozen=True)
class VQCNIRConfig:
    """Hyper-parameters of the network. Defaults are the authors' released model.

    Widths: the encoder, G and D use ``width`` x (1, 2, 4, 4) channels at scales 1, 1/2, 1/4, 1/8;
    D's cross-attention uses (1, 2, 4, 4) heads at those scales.
    """

    in_channels: int = 3
    width: int = 64
    codebook_size: int = 1024
    code_dim: int = 512
    num_aiem: int = 12
    aiem_splits: int = 4
    aiem_curves: int = 3
    deform_groups: int = 4
    norm_groups: int = 32
    commitment_beta: float = 0.25
    # scale of the codebook: 8 (the paper) or 4, where the encoder's last stage keeps its
    # resolution and G's and D's first upsampling is skipped (same modules, same state-dict
    # keys, a 4-px code grid instead of 8 px, at about 4x the cost of the coarsest level)
    quant_scale: int = 8
    # ablation switches of the paper's Table 3 (both on in VQCNIR)
    use_aiem: bool = True
    use_dbca: bool = True
    # with DBCA on: how many of D's 4 scales, from the coarsest, meet G through DBCA; the finer
    # ones concatenate G's feature as with use_dbca off (full-resolution DBCA is about a third
    # of the small model's CPU time)
    dbca_levels: int = 4
    # how G and D double their resolution: "nearest" (the paper's) copies each pixel into a 2x2
    # block, "bilinear" interpolates (tried against the 8-px mosaic, which it does not remove:
    # docs/recipe_search.md). Parameter-free: same state-dict keys, so checkpoints must store it.
    upsample: str = "nearest"
    # not in the paper, which feeds D only the 1/8-scale feature: D also adds the encoder's
    # features at 1/4, 1/2 and full scale (zero-initialised 1x1 convs, so a fresh run starts as
    # the paper's network), so fine detail need not pass through the codes (MODEL_CARD.md)
    encoder_skips: bool = False

    def __post_init__(self):
        counts = [f.name for f in fields(self) if f.type == "int" and getattr(self, f.name) < 1]
        if counts:  # checked first: the checks below divide by these
            raise ValueError(f"invalid VQCNIRConfig: {', '.join(counts)} must be at least 1")
        w = self.width
        problems = []
        for channels in (w, 2 * w, 4 * w):
            if channels % self.norm_groups:
                problems.append(f"width x {channels // w} = {channels} is not divisible by norm_groups={self.norm_groups}")
            if channels % self.deform_groups:
                problems.append(f"{channels} channels are not divisible by deform_groups={self.deform_groups}")
        if self.dbca_levels > 4:
            problems.append(f"dbca_levels={self.dbca_levels} exceeds D's 4 scales")
        if self.upsample not in UPSAMPLE_MODES:
            problems.append(f"upsample={self.upsample!r} is not one of {', '.join(UPSAMPLE_MODES)}")
        if self.quant_scale not in (4, 8):
            problems.append(f"quant_scale={self.quant_scale} is not 4 or 8")
        if 4 * w < self.aiem_splits:
            problems.append(f"aiem_splits={self.aiem_splits} exceeds the 1/8-scale width {4 * w}")
        if problems:
            raise ValueError("invalid VQCNIRConfig: " + "; ".join(problems))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "VQCNIRConfig":
        if not isinstance(values, dict):
            raise TypeError(f"a model config maps field names to values, not a {type(values).__name__}")
        types = {f.name: f.type for f in fields(cls)}  # "int", "float", "bool", "str" (postponed annotations)
        unknown = sorted(map(str, set(values) - set(types)))
        if unknown:
            raise ValueError(f"unknown model config keys: {', '.join(unknown)}")
        for name, value in values.items():
            if not _is_a(value, types[name]):
                raise TypeError(f"model config {name}={value!r} is not of type {types[name]}")
        return cls(**values)

    def with_(self, **changes) -> "VQCNIRConfig":
        return replace(self, **changes)


def _is_a(value, type_name: str) -> bool:
    """Whether a value read from JSON or a checkpoint has a field's type (bool is no number here)."""
    if type_name == "bool":
        return isinstance(value, bool)
    if type_name == "str":
        return isinstance(value, str)
    allowed = (int, float) if type_name == "float" else (int,)
    return isinstance(value, allowed) and not isinstance(value, bool)


PRESETS: dict[str, VQCNIRConfig] = {
    # the authors' released model (47.9 M parameters)
    "paper": VQCNIRConfig(),
    # trains in hours on a CPU
    "small": VQCNIRConfig(width=32, codebook_size=512, code_dim=128, num_aiem=4, norm_groups=16),
    # for tests: runs in milliseconds
    "tiny": VQCNIRConfig(width=8, codebook_size=32, code_dim=16, num_aiem=2, norm_groups=4),
}
# the recipe search's winner (docs/recipe_search.md): small without AIEM and DBCA, codebook at 1/4
# scale: restores 1 MP in about 3 s on 2 CPU cores and shows almost no code grid
PRESETS["fast"] = PRESETS["small"].with_(quant_scale=4, use_aiem=False, use_dbca=False)


def preset(name: str) -> VQCNIRConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown model preset {name!r}; choose one of {', '.join(PRESETS)}") from None
