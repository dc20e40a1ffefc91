"""Soak: one restore process over many small images keeps its resident memory flat after warm-up.

Runs benchmarks/restore_soak.py on a shorter run (the benchmark prints the whole curve). It
catches a leak of whole tensors or graphs per image (megabytes), not one of a few kilobytes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_resident_memory_stays_flat_over_many_images():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "restore_soak.py"), "--images", "60",
                             "--size", "32x24", "--json"], capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr
    soak = json.loads(result.stdout)
    assert soak["summary"].startswith("restored 60, skipped 0")
    assert len(soak["curve"]) > 10  # sampled along the run, not only at its ends
    assert abs(soak["growth_mib"]) < 16, soak["curve"]
