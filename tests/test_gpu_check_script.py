"""scripts/gpu_check.py without CUDA: one line says so, then the CPU side of every check runs at
tiny sizes and lands in one table."""

import pytest


@pytest.fixture(scope="module")
def gpu_check(load_script):
    return load_script("gpu_check")


def test_cpu_parts_run_and_print_one_table(gpu_check, paper_onnx, capsys, monkeypatch):
    monkeypatch.setattr(gpu_check.torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--onnx", str(paper_onnx)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "no CUDA device here: running the CPU parts of each check at tiny sizes"
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1] for line in lines if line.startswith("| ") and "---" not in line}
    rows.pop("check")
    assert rows["restore parity fp32 (64²)"] == "PASS" and rows["restore parity bf16 (64²)"] == "PASS"
    assert rows["restore parity fp16 (64²)"] == "SKIP"  # fp16 needs a GPU
    assert rows["deform_conv2d on CUDA"] == "SKIP"
    assert rows["train tiny-stage1 bf16 autocast"] == "PASS" and rows["train tiny-stage2 bf16 autocast"] == "PASS"
    assert rows["torchrun gloo"] == "PASS"
    assert rows["ONNX Runtime CUDA provider"] == "SKIP" and "CPU provider ran paper.onnx" in out
    assert {k for k in rows if k.startswith("speed")} == {
        f"speed {m} 64² {p}" for m in ("default", "paper") for p in ("fp32", "bf16")}
    assert out.rstrip().endswith("checks, 0 failed")


def test_a_missing_onnx_file_is_one_error_line(gpu_check, tmp_path, capsys):
    assert gpu_check.main(["--onnx", str(tmp_path / "nope.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")
