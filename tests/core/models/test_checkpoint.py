"""Checkpoint contract 3.3: round trip, weights_only, and refusals that name both sides."""

import pytest
import torch
import torchvision

from fer_core.errors import CheckpointMismatchError
from fer_core.models import CheckpointMeta, ModelConfig, create_model, load_checkpoint, save_checkpoint
from fer_core.taxonomy import FER_CLASSES

CFG = ModelConfig(name="test_resnet", img_size=32)


def _saved(tmp_path, cfg=CFG, **meta):
    torch.manual_seed(0)
    model = create_model(cfg).eval()
    path = save_checkpoint(tmp_path / "ck.pt", model, CheckpointMeta.for_model(cfg, **meta))
    return model, path


def test_round_trip_same_logits_and_metadata(tmp_path):
    model, path = _saved(tmp_path, dataset_sha256="abc", metrics={"macro_f1": 0.5}, epoch=3, mean=(0.4,), std=(0.2,))
    loaded, meta = load_checkpoint(path, expected=CFG)
    x = torch.randn(2, 1, 32, 32)
    assert torch.equal(loaded(x), model(x))
    assert (meta.model_name, meta.epoch, meta.dataset_sha256, meta.classes) == ("test_resnet", 3, "abc", FER_CLASSES)
    assert meta.metrics == {"macro_f1": 0.5} and meta.mean == (0.4,)
    again, _ = load_checkpoint(path)  # rebuilt from the stored model config
    assert torch.equal(again(x), model(x))
    raw = torch.load(path, weights_only=True)  # noqa: TID251 - proves the file holds plain types only
    assert raw["meta"]["timm_version"]


def test_torchvision_mobilenet_offered_to_timm_is_refused(tmp_path):
    tv = torchvision.models.mobilenet_v3_large(weights=None)
    torch.save(tv.state_dict(), tmp_path / "tv.pt")
    want = ModelConfig(name="mobilenetv3_large_100", img_size=224)
    with pytest.raises(CheckpointMismatchError) as e:
        load_checkpoint(tmp_path / "tv.pt", expected=want)
    msg = str(e.value)
    assert "torchvision" in msg and "mobilenetv3_large_100" in msg and "overlap 0/" in msg
    wrapped = save_checkpoint(tmp_path / "tvm.pt", tv, CheckpointMeta(model_name="torchvision.mobilenet_v3_large"))
    with pytest.raises(CheckpointMismatchError) as e:
        load_checkpoint(wrapped, expected=want)
    assert "torchvision.mobilenet_v3_large" in str(e.value) and "mobilenetv3_large_100" in str(e.value)


def test_bare_state_dict_needs_full_overlap_and_an_expected_config(tmp_path):
    model = create_model(CFG)
    sd = model.state_dict()
    torch.save(sd, tmp_path / "bare.pt")
    loaded, meta = load_checkpoint(tmp_path / "bare.pt", expected=CFG)
    assert torch.equal(loaded.head.weight, model.head.weight) and meta.code_version == "unknown"
    with pytest.raises(CheckpointMismatchError, match="no ferflow metadata"):
        load_checkpoint(tmp_path / "bare.pt")
    sd.pop("head.bias")
    torch.save(sd, tmp_path / "partial.pt")
    with pytest.raises(CheckpointMismatchError, match="head.bias"):
        load_checkpoint(tmp_path / "partial.pt", expected=CFG)


@pytest.mark.parametrize(
    ("update", "needle"),
    [({"in_chans": 3}, "in_chans"), ({"img_size": 48}, "img_size"), ({"head": "arcface"}, "head"),
     ({"name": "test_efficientnet"}, "test_efficientnet")],
)  # fmt: skip
def test_expected_spec_mismatch_is_refused(tmp_path, update, needle):
    _, path = _saved(tmp_path)
    with pytest.raises(CheckpointMismatchError, match=needle):
        load_checkpoint(path, expected=CFG.model_copy(update=update))


def test_class_order_and_timm_major_version_are_checked(tmp_path):
    _, path = _saved(tmp_path)
    with pytest.raises(CheckpointMismatchError, match="classes"):
        load_checkpoint(path, classes=tuple(reversed(FER_CLASSES)))
    _, old = _saved(tmp_path, timm_version="0.9.16")
    with pytest.raises(CheckpointMismatchError, match="0.9.16"):
        load_checkpoint(old)


class _Payload:
    pass


def test_arbitrary_pickles_and_non_state_dicts_are_refused(tmp_path):
    torch.save({"state_dict": {}, "obj": _Payload()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointMismatchError, match="weights_only"):
        load_checkpoint(tmp_path / "evil.pt", expected=CFG)
    torch.save({"weights": {"a": torch.zeros(1)}, "note": "hi"}, tmp_path / "odd.pt")
    with pytest.raises(CheckpointMismatchError, match="neither"):
        load_checkpoint(tmp_path / "odd.pt", expected=CFG)
    with pytest.raises(CheckpointMismatchError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
