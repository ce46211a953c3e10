"""Export reparameterises RepVGG-style models: the ONNX graph is the fused model, the caller's model is unchanged."""

from __future__ import annotations

import numpy as np
import onnx
import torch

from fer_core.export import make_session
from fer_core.export.onnx import check_parity, export_onnx
from fer_core.models import ModelConfig, create_model, reparameterize
from fer_core.preprocess import PreprocessSpec


def _randomise_bn(model: torch.nn.Module) -> None:
    """Non-trivial BatchNorm statistics, so fusing them into the convolutions is really tested."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


def test_exported_repvgg_equals_the_reparameterised_torch_model(tmp_path):
    torch.manual_seed(0)
    model = create_model(ModelConfig(name="repvgg_a0", small_input_stem=True, img_size=32))
    _randomise_bn(model)
    model.train()
    path = export_onnx(model, PreprocessSpec(size=(32, 32)), tmp_path / "rep.onnx")
    assert model.training  # mode restored, and the caller's model still has its branches:
    assert hasattr(model.backbone.stages[0][0], "conv_1x1") and model.backbone.stages[0][0].conv_1x1 is not None
    fused = reparameterize(model)
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in fused.modules())
    nodes = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert nodes.count("Conv") == convs and "BatchNormalization" not in nodes  # one conv per fused block
    x = np.random.default_rng(0).normal(size=(4, 1, 32, 32)).astype(np.float32)
    sess = make_session(path, threads=1)
    got = sess.run(["logits"], {sess.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        want = fused(torch.from_numpy(x)).numpy()
    scale = float(np.abs(want).max())
    assert np.max(np.abs(got - want)) <= 1e-5 * scale
    check_parity(model, path, x, atol=1e-4 * scale)  # and end to end against the unfused, trained-form model
