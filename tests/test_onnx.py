"""`vqcnir export` and the ONNX Runtime backend: a checked graph with its metadata, and the same
restorations as the torch backend (parity fixtures and the bundled model) through the same engine.

Exporting is slow (torch.export traces a few thousand ops; about a minute for the paper-size
network at a fixed size here), so each model is exported once per session: the paper-size
network with the parity weights through the CLI at the fixtures' padded size (both pad to 128x128
as the release does), in a child process started with the session (conftest), and the bundled
model with dynamic sizes by ``load_model(backend="onnxruntime")``, which exports on the fly, in
the meantime.
"""

import copy
import json

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

import vqcnir
from parity_weights import FIXTURES
from vqcnir.cli import main
from vqcnir.engine import RestoreOptions, auto_tile_plan, prepare_for_inference, restore_tensor
from vqcnir.export import export_onnx, read_metadata
from vqcnir.nn import VQCNIRConfig, preset
from vqcnir.nn.dbca import ModulatedDeformConv
from vqcnir.nn.deform import onnx_style
from vqcnir.ortmodel import OnnxRuntimeModel
from vqcnir.weights import CONFIG_KEY
from vqcnir.zoo import MODELS

PARITY = 1e-4  # the bar; two correct float32 implementations differ by about 5e-6 here
CPU = torch.device("cpu")


def _fixture_input(case):
    x = np.load(FIXTURES / "parity" / f"case_{case}_input_u8.npy")
    return torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255


@pytest.fixture(scope="session")
def bundled_ort():
    return vqcnir.load_model(device="cpu", backend="onnxruntime")


def test_onnxruntime_matches_torch_on_the_bundled_model_for_any_batch_and_size(bundled_ort):
    torch_model = vqcnir.load_model(device="cpu")
    assert bundled_ort.config == preset(MODELS["default"].preset) and bundled_ort.weights_name == MODELS["default"].filename
    assert bundled_ort.session.get_inputs()[0].shape == ["batch", 3, "height", "width"]
    torch.manual_seed(1)
    for shape in [(2, 3, 40, 56), (1, 3, 61, 37)]:  # dynamic batch; a size the engine pads
        x = torch.rand(shape) * 0.3
        ours = restore_tensor(torch_model, x, RestoreOptions(tile=0))
        theirs = restore_tensor(bundled_ort, x, RestoreOptions(tile=0))
        assert theirs.shape == x.shape
        assert (theirs - ours).abs().max() <= PARITY
    # the engine's tiling serves both backends alike
    options = RestoreOptions(tile=32, tile_overlap=8)
    x = torch.rand(1, 3, 56, 72) * 0.3
    assert (restore_tensor(bundled_ort, x, options) - restore_tensor(torch_model, x, options)).abs().max() <= PARITY
    # ONNX Runtime needs more working memory, so the memory budget buys smaller tiles
    ort_plan = auto_tile_plan(bundled_ort, 2000, 3000, torch.float32, 2**30, CPU)
    torch_plan = auto_tile_plan(torch_model, 2000, 3000, torch.float32, 2**30, CPU)
    assert ort_plan.tile < torch_plan.tile


@pytest.mark.parametrize("style", ["deformconv", "gridsample"])
def test_both_deform_graphs_match_torchvision(style, tmp_path):
    """Each way of writing the deformable conv into ONNX gives torchvision's result, offsets
    reaching outside the image included."""
    torch.manual_seed(0)
    layer = ModulatedDeformConv(8, 2).eval()
    torch.nn.init.normal_(layer.conv_offset.weight, std=0.5)  # offsets of a few pixels
    x, feat = torch.rand(1, 8, 16, 24), torch.rand(1, 8, 16, 24)
    with torch.no_grad(), onnx_style(style):
        program = torch.onnx.export(layer, (x, feat), dynamo=True, opset_version=19, verbose=False,
                                    dynamic_shapes=({0: "b", 2: "h", 3: "w"}, {0: "b", 2: "h", 3: "w"}))
    ops = {node.op_type for node in program.model_proto.graph.node}
    assert ("DeformConv" in ops) == (style == "deformconv") and ("GridSample" in ops) == (style == "gridsample")
    session = onnxruntime.InferenceSession(program.model_proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    x, feat = torch.rand(2, 8, 24, 16), torch.rand(2, 8, 24, 16)  # another batch and shape
    (y,) = session.run(None, dict(zip(names, (x.numpy(), feat.numpy()))))
    import vqcnir.nn.fastpath as fastpath

    with torch.no_grad():
        fastpath.ENABLED = False  # torchvision's own kernel as the reference
        try:
            ref = layer(x, feat).numpy()
        finally:
            fastpath.ENABLED = True
    assert np.abs(y - ref).max() <= PARITY


class _TinyDeformNet(torch.nn.Module):
    """A small stand-in with a config, so the fp16 export path runs without tracing the whole network."""

    def __init__(self):
        super().__init__()
        self.config = preset("tiny")
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.dcn = ModulatedDeformConv(8, 2)
        self.out = torch.nn.Conv2d(8, 3, 1)

    def forward(self, night):
        feat = self.conv(night)
        return self.out(self.dcn(feat, feat))


def test_fp16_export_halves_the_weights_but_keeps_deform_in_fp32(tmp_path):
    path = export_onnx(_TinyDeformNet(), tmp_path / "half.onnx", weights_name="test", precision="fp16")
    model = onnx.load(str(path))
    assert read_metadata(model)["vqcnir_precision"] == "fp16"
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    weights = {t.name: t.data_type for t in model.graph.initializer}
    assert onnx.TensorProto.FLOAT16 in weights.values()
    deform = next(n for n in model.graph.node if n.op_type == "DeformConv")
    types = {v.name: v.type.tensor_type.elem_type for v in model.graph.value_info}
    assert all(types.get(name, onnx.TensorProto.FLOAT) == onnx.TensorProto.FLOAT for name in deform.input if name)


def test_bilinear_upsampling_and_encoder_skips_export_and_match_torch(tmp_path):
    """``upsample=bilinear`` (a config choice no tensor shows) reaches the graph and its metadata;
    the encoder skips (trained: non-zero) and their edge padding export too."""
    from vqcnir.nn import VQCNIR

    torch.manual_seed(0)
    config = preset("tiny").with_(upsample="bilinear", use_dbca=False, encoder_skips=True)  # no deform: quick
    net = VQCNIR(config).eval()
    for conv in net.main_decode.skip_dict.values():
        torch.nn.init.normal_(conv.weight, std=0.3)
    model = prepare_for_inference(net, CPU)
    path = export_onnx(model, tmp_path / "bilinear.onnx", weights_name="test", size=(32, 48))
    graph = onnx.load(str(path))
    stored = json.loads(read_metadata(graph)[CONFIG_KEY])
    assert (stored["upsample"], stored["encoder_skips"]) == ("bilinear", True)
    modes = {a.s for n in graph.graph.node if n.op_type == "Resize" for a in n.attribute if a.name == "mode"}
    assert modes == {b"linear"}
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.rand(2, 3, 32, 48)
    (y,) = session.run(None, {"night": x.numpy()})
    with torch.no_grad():
        assert np.abs(y - model(x).numpy()).max() <= PARITY


def test_export_refuses_to_replace_a_file_or_write_another_suffix(tmp_path, capsys):
    existing = tmp_path / "model.onnx"
    existing.write_bytes(b"keep me")
    assert main(["export", str(existing), "--weights", "default"]) == 2
    assert "already exists" in capsys.readouterr().err and existing.read_bytes() == b"keep me"
    assert main(["export", str(tmp_path / "model.pth")]) == 2
    assert "must end in .onnx" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "m.onnx"), "--opset", "17"]) == 2
    assert "needs opset 19" in capsys.readouterr().err


def _foreign_onnx(path):
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 8, 8])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3, 8, 8])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 19)]), str(path))
    return path


@pytest.mark.parametrize("kind,args,says", [
    ("foreign", [], "not an ONNX file from `vqcnir export`"),
    ("garbage", [], "not a model ONNX Runtime can load"),
    ("foreign", ["--backend", "torch"], "runs with --backend onnxruntime"),
    ("foreign", ["--precision", "bf16"], "is for the torch backend"),
])
def test_bad_onnx_use_is_one_error_line(tmp_path, kind, args, says, capsys):
    night = tmp_path / "n.png"
    from PIL import Image

    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(night)
    model = tmp_path / "m.onnx"
    _foreign_onnx(model) if kind == "foreign" else model.write_bytes(b"\x00not onnx")
    assert main(["restore", str(night), "-o", str(tmp_path / "out"), "--weights", str(model), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and says in err[0]


# The paper-size export runs in the background from the session's start (conftest.BackgroundExport):
# the tests that need it come last.
def test_export_is_checked_and_records_config_and_weights(paper_onnx):
    model = onnx.load(str(paper_onnx))
    onnx.checker.check_model(model, full_check=True)
    meta = read_metadata(model)
    assert json.loads(meta[CONFIG_KEY]) == VQCNIRConfig().to_dict()
    assert meta["vqcnir_weights"] == "parity-fixture.safetensors"
    assert meta["vqcnir_precision"] == "fp32" and meta["vqcnir_deform"] == "deformconv"
    (graph_input,) = model.graph.input
    dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    assert graph_input.name == "night" and dims == ["batch", 3, 128, 128]
    ops = {node.op_type for node in model.graph.node}
    assert "DeformConv" in ops and "GridSample" not in ops
    assert min(op.version for op in model.opset_import if op.domain in ("", "ai.onnx")) == 19


@pytest.mark.parametrize("case", ["a", "b"])
def test_onnxruntime_matches_the_release_on_the_parity_fixtures(paper_onnx, paper_model_with_fixture_weights, case):
    x = _fixture_input(case)
    ort_model = OnnxRuntimeModel(paper_onnx, CPU)
    restored = restore_tensor(ort_model, x, RestoreOptions(tile=0))[0].numpy()
    release = np.load(FIXTURES / "parity" / f"case_{case}_restored_f32.npy")
    assert np.abs(restored - release).max() <= PARITY
    torch_model = prepare_for_inference(copy.deepcopy(paper_model_with_fixture_weights), CPU)
    ours = restore_tensor(torch_model, x, RestoreOptions(tile=0))[0].numpy()
    assert np.abs(restored - ours).max() <= PARITY


def test_restore_cli_runs_an_onnx_file_like_its_checkpoint(paper_onnx, tmp_path, capsys):
    night = tmp_path / "night"
    night.mkdir()
    from PIL import Image

    pixels = (_fixture_input("b")[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(pixels).save(night / "b.png")
    weights = paper_onnx.parent / "parity-fixture.safetensors"
    assert main(["restore", str(night), "-o", str(tmp_path / "ort"), "--weights", str(paper_onnx)]) == 0
    assert main(["restore", str(night), "-o", str(tmp_path / "torch"), "--weights", str(weights)]) == 0
    a = np.asarray(Image.open(tmp_path / "ort" / "b.png"), dtype=int)
    b = np.asarray(Image.open(tmp_path / "torch" / "b.png"), dtype=int)
    assert np.abs(a - b).max() <= 1
    # a fixed-size export refuses other sizes in one line
    Image.fromarray(pixels[:40]).save(night / "small.png")
    assert main(["restore", str(night / "small.png"), "-o", str(tmp_path / "ort"), "--weights", str(paper_onnx)]) == 1
    assert "exported for 128x128 only" in capsys.readouterr().err
