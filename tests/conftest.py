import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # for parity_weights

from vqcnir.nn import VQCNIR, preset  # noqa: E402


@pytest.fixture(scope="session")
def load_script():
    """Loads scripts/NAME.py as a module (scripts are not a package)."""
    import importlib.util

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="session")
def paper_model_with_fixture_weights():
    """The paper-size restorer loaded with the deterministic parity weights."""
    from parity_weights import fixture_state_dict

    model = VQCNIR().eval()
    model.load_state_dict(fixture_state_dict(), strict=True)
    return model


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    return VQCNIR(preset("tiny")).eval()


@pytest.fixture
def tiny_checkpoint(tmp_path):
    """A tiny-preset restorer saved as safetensors with its config (random weights, seed 0)."""
    from vqcnir.weights import save_checkpoint

    torch.manual_seed(0)
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(path, VQCNIR(preset("tiny")).state_dict(), preset("tiny"))
    return path


@pytest.fixture
def one_torch_thread():
    """One torch thread: on two shared cores, two threads run small models many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def allocator_calls(monkeypatch):
    """Commands ask glibc to keep freed memory (vqcnir.allocator), which would last for the whole
    pytest process; here they only record the call. test_allocator.py runs the real one in a
    child process."""
    import vqcnir.allocator

    calls = []
    monkeypatch.setattr(vqcnir.allocator, "keep_freed_memory", lambda: calls.append(True) or True)
    return calls


class BackgroundExport:
    """`vqcnir export ARGS` in a child process. Exporting is minutes of single-threaded tracing, so
    it starts with the session and runs beside other tests (and beside the in-process export of
    the bundled model) instead of in front of the first test that needs the file."""

    def __init__(self, path: Path, *args: str):
        import subprocess

        self.path, self.log = path, path.with_suffix(".log")
        with self.log.open("w") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "vqcnir", "export", str(path), *args],
                                         stdout=log, stderr=subprocess.STDOUT)

    def result(self) -> Path:
        assert self.proc.wait() == 0, self.log.read_text()
        return self.path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="session", autouse=True)
def background_exports(request, tmp_path_factory):
    """Starts the exports that the selected tests will need, once, when the session begins."""
    needed = {name for item in request.session.items for name in item.fixturenames}
    exports = {}
    if "paper_onnx" in needed:
        from parity_weights import fixture_state_dict
        from safetensors.torch import save_file

        folder = tmp_path_factory.mktemp("paper_onnx")
        weights = folder / "parity-fixture.safetensors"
        save_file(fixture_state_dict(), str(weights))
        # at 128x128, the size both parity fixtures pad to (a fixed size exports about 3x faster)
        exports["paper"] = BackgroundExport(folder / "paper.onnx", "--weights", str(weights), "--size", "128x128")
    yield exports
    for export in exports.values():
        export.stop()


@pytest.fixture(scope="session")
def paper_onnx(background_exports):
    """The paper-size network with the parity weights, exported by `vqcnir export` at 128x128;
    its weights file lies next to it."""
    return background_exports["paper"].result()
