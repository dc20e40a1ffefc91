"""benchmarks/restore_speed.py --release-src: runs a release folder's own network class next to ours
and compares the outputs. The authors' code is never part of this project, so the tests build a
fake release folder with the same layout and entry points (models/vqlol_arch.py: VQLOL(...).test())
around the tiny network."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCHMARK = Path(__file__).parents[1] / "benchmarks" / "restore_speed.py"
FAKE_CLASS = '''
import torch

from models.ops.dcn import deform_conv_ext  # only the benchmark's stand-in: no compiled op in this folder
from vqcnir.engine import mirror_pad, release_padding
from vqcnir.nn import VQCNIR, preset


class VQLOL(VQCNIR):
    def __init__(self, *, codebook_params, LQ_stage, scale_factor):
        assert codebook_params == [[32, 1024, 512]] and LQ_stage and scale_factor == 1
        super().__init__(preset("tiny"))

    @torch.no_grad()
    def test(self, x):
        h, w = x.shape[-2:]
        return self(mirror_pad(x, release_padding(h), release_padding(w)))[..., :h, :w]
'''


def _fake_release(folder: Path, arch: str = FAKE_CLASS) -> Path:
    for package in ("models", "models/ops", "models/ops/dcn"):
        (folder / package).mkdir(parents=True, exist_ok=True)
        (folder / package / "__init__.py").write_text("")
    (folder / "models" / "vqlol_arch.py").write_text(arch)
    return folder


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("restore_speed", BENCHMARK)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def _benchmark(*args):
    # tiny network, 64 px (the release pads it to 128), one thread, a small GEMM for the peak column;
    # rows: the release and our re-creation of its way (each row starts a process: keep them few)
    cmd = [sys.executable, str(BENCHMARK), "--preset", "tiny", "--sizes", "64", "--modes", "release",
           "--precisions", "fp32", "--reference-sizes", "64", "--backends", "", "--repeats", "1", "--threads", "1",
           "--gemm-size", "64", "--check", "", *args]
    return subprocess.run(cmd, capture_output=True, text=True)


def _table(stdout: str, columns: int) -> list[list[str]]:
    """The rows of the printed markdown tables with this many columns, header rows left out."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in stdout.splitlines()
            if line.startswith("|") and not line.startswith(("|---", "| size |"))]
    return [row for row in rows if len(row) == columns]


def test_release_rows_run_its_own_class_and_are_compared_with_ours(tmp_path):
    proc = _benchmark("--release-src", str(_fake_release(tmp_path / "release")))
    assert proc.returncode == 0, proc.stderr
    timed = {row[3]: row for row in _table(proc.stdout, 10)}
    assert list(timed) == ["release", "reference"]
    assert float(timed["release"][6]) > 0 and timed["release"][5] == "1"  # timed, whole image
    (compared,) = _table(proc.stdout, 9)
    assert compared[:4] == ["64x64", "release", "reference", "keep"]
    assert float(compared[4]) < 1e-4 and compared[8] == "yes"


def test_outputs_more_than_one_level_apart_fail_the_check(capsys):
    bench = _load_benchmark()
    release = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    close, far = release + 1e-5, release + 0.01  # 0.01 is 2.55 levels
    rows = [((16, 16, "release", "vqcnir", "keep"), bench.output_difference(close, release)),
            ((16, 16, "release", "onnxruntime-deformconv", "keep"), bench.output_difference(far, release))]
    assert bench.report_against_release(rows[:1], expected=True)
    assert not bench.report_against_release(rows, expected=True)
    table = _table(capsys.readouterr().out, 9)
    assert [row[8] for row in table] == ["yes", "yes", "NO"] and int(table[2][7]) >= 2
    assert not bench.report_against_release([], expected=True)  # a release row that failed is no pass


@pytest.mark.parametrize("kind, says", [
    ("missing", "no such folder"),
    ("empty", "no models/vqlol_arch.py in it"),
    ("broken", "does not import: ModuleNotFoundError: No module named 'einops_not_installed_here' "
               "(pip install einops_not_installed_here)"),
])
def test_an_unusable_release_folder_is_one_error_line(tmp_path, kind, says):
    folder = tmp_path / "release"
    if kind == "empty":
        folder.mkdir()
    elif kind == "broken":
        _fake_release(folder, "import einops_not_installed_here\n")
    proc = _benchmark("--release-src", str(folder))
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: ") and says in line


def test_the_compiled_dcn_stand_in_computes_our_deformable_conv():
    """Called the way the release's Python calls its compiled op (BasicSR's argument order)."""
    from vqcnir.nn.deform import deform_conv3x3

    bench = _load_benchmark()
    g = torch.Generator().manual_seed(0)
    x, weight, bias = torch.rand(1, 4, 9, 7, generator=g), torch.randn(4, 4, 3, 3, generator=g), torch.rand(4, generator=g)
    offset = 3 * torch.randn(1, 2 * 2 * 9, 9, 7, generator=g)  # two offset groups, several pixels
    mask = torch.rand(1, 2 * 9, 9, 7, generator=g)
    output = torch.empty(1, 4, 9, 7)
    bench.dcn_stand_in().modulated_deform_conv_forward(
        x, weight, bias, torch.empty(0), offset, mask, output, torch.empty(0), 3, 3, 1, 1, 1, 1, 1, 1, 1, 2, True)
    torch.testing.assert_close(output, deform_conv3x3(x, offset, mask, weight, bias), atol=1e-5, rtol=0)


def test_a_preset_with_changed_fields_builds_that_network():
    bench = _load_benchmark()
    config = bench.network_config("tiny:width=16,use_dbca=false,quant_scale=4,upsample=bilinear")
    assert (config.width, config.use_dbca, config.quant_scale, config.upsample) == (16, False, 4, "bilinear")
    assert bench.network_config("tiny") == bench.network_config("tiny:")
    with pytest.raises(Exception, match="quant_scale=3 is not 4 or 8"):
        bench.network_config("tiny:quant_scale=3")
