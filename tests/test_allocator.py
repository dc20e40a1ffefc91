"""vqcnir.allocator: glibc keeps freed memory, so a large tensor made again is not page-faulted in
again; the restore and evaluate commands turn it on, and the tile chooser allows for it."""

import os
import platform
import subprocess
import sys

import pytest
import torch

import vqcnir.engine
from vqcnir.cli import main
from vqcnir.engine import RETAINED_HEAP_OVERHEAD, auto_tile_plan
from vqcnir.nn import VQCNIR, preset
from vqcnir.weights import save_checkpoint

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="needs glibc")

# Ten rounds of 64 MiB tensors (like a forward pass's feature maps), then page faults over five
# more: about 250,000 when every freed tensor went back to the kernel (16,384 pages each), almost
# none once glibc keeps them (where a block lands depends on address randomisation, so now and
# then one does not fit a kept hole and is faulted in).
_CHILD = """
import resource, sys, torch
from vqcnir.allocator import keep_freed_memory, keeps_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else False
assert kept == keeps_freed_memory()
def one_round():
    x = torch.ones(16 * 2**20); y = x * 2; z = x + y; del x, y, z
for _ in range(10):
    one_round()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    one_round()
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _child(mode: str, env: dict | None = None) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, check=True, env=env)
    kept, faults = out.stdout.split()
    return kept == "True", int(faults)


@glibc_only
def test_freed_memory_is_reused_instead_of_faulted_in_again():
    kept, faults = _child("keep")
    assert kept and faults < 50_000
    kept, faults = _child("default")
    assert not kept and faults > 200_000  # what glibc does on its own


@glibc_only
def test_an_allocator_setting_in_the_environment_is_left_alone():
    env = dict(os.environ, MALLOC_TRIM_THRESHOLD_="131072")
    kept, faults = _child("keep", env)
    assert not kept and faults > 200_000


def test_restore_keeps_freed_memory_on_cpu(tmp_path, allocator_calls):
    from PIL import Image

    torch.manual_seed(0)
    weights = tmp_path / "tiny.safetensors"
    save_checkpoint(weights, VQCNIR(preset("tiny")).state_dict(), preset("tiny"))
    Image.new("RGB", (24, 16), (20, 10, 5)).save(tmp_path / "a.png")
    assert main(["restore", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--weights", str(weights),
                 "--device", "cpu"]) == 0
    assert allocator_calls == [True]


def test_evaluate_with_a_model_keeps_freed_memory(tmp_path, allocator_calls):
    from PIL import Image

    torch.manual_seed(0)
    weights = tmp_path / "tiny.safetensors"
    save_checkpoint(weights, VQCNIR(preset("tiny")).state_dict(), preset("tiny"))
    for folder in ("night", "gt"):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (24, 16), (20, 10, 5)).save(tmp_path / folder / "a.png")
    assert main(["evaluate", "--night", str(tmp_path / "night"), "--gt", str(tmp_path / "gt"),
                 "--weights", str(weights), "--metrics", "psnr", "--out", str(tmp_path / "eval"),
                 "--no-progress"]) == 0
    assert allocator_calls == [True]


def test_tile_chooser_allows_for_the_kept_heap(monkeypatch):
    model = VQCNIR(preset("tiny"))
    cpu = torch.device("cpu")
    # a budget that holds the image exactly by the plain estimate
    per_pixel = vqcnir.engine.BYTES_PER_PIXEL_WIDTH64 * model.config.width / 64
    budget = (600 + 64) * (800 + 64) * per_pixel
    monkeypatch.setattr(vqcnir.engine, "keeps_freed_memory", lambda: False)
    assert auto_tile_plan(model, 600, 800, torch.float32, budget, cpu) is None
    monkeypatch.setattr(vqcnir.engine, "keeps_freed_memory", lambda: True)
    plan = auto_tile_plan(model, 600, 800, torch.float32, budget, cpu)
    assert plan is not None
    assert auto_tile_plan(model, 600, 800, torch.float32, budget * RETAINED_HEAP_OVERHEAD, cpu) is None


@glibc_only
def test_the_kept_heap_is_reported_as_reusable():
    code = """
import torch
from vqcnir.allocator import keep_freed_memory, reusable_bytes
assert reusable_bytes() == 0   # nothing is kept before keeping is on
keep_freed_memory()
x = torch.ones(64 * 2**20); del x   # 256 MiB freed, kept by this process
print(reusable_bytes())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) >= 256 * 2**20


def test_the_cpu_memory_budget_counts_the_kept_heap_as_available(monkeypatch):
    monkeypatch.setattr(vqcnir.engine, "_available_ram", lambda: 4 * 2**30)
    monkeypatch.setattr(vqcnir.engine, "reusable_bytes", lambda: 0)
    assert vqcnir.engine.default_memory_budget(torch.device("cpu")) == pytest.approx(0.4 * 4 * 2**30)
    monkeypatch.setattr(vqcnir.engine, "reusable_bytes", lambda: 2**30)
    assert vqcnir.engine.default_memory_budget(torch.device("cpu")) == pytest.approx(0.4 * 5 * 2**30)
