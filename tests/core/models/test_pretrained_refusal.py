"""Backbone weights that need unpickling are refused as ferflow's own error, naming the file and the fix."""

from __future__ import annotations

import pickle
from fractions import Fraction

import pytest
import torch

from fer_core.errors import CheckpointMismatchError
from fer_core.models import create_model
from fer_core.models.config import ModelConfig


def test_a_pickle_bearing_pretrained_path_is_a_checkpoint_mismatch(tmp_path):
    weights = tmp_path / "weights.pt"
    torch.save({"conv1.weight": torch.zeros(1), "note": Fraction(1, 3)}, weights)  # an object torch will not load
    with pytest.raises(CheckpointMismatchError) as info:
        create_model(ModelConfig(name="test_resnet", in_chans=1, img_size=32, pretrained_path=str(weights)))
    msg = str(info.value)
    assert msg.startswith(f"pretrained_path {weights} cannot be read with weights_only=True")
    assert "fractions.Fraction" in msg and "torch.save(model.state_dict(), path)" in msg
    assert isinstance(info.value.__cause__, pickle.UnpicklingError)
    assert "\n" not in msg  # one line, not torch's page of advice


def test_a_file_that_is_not_a_torch_file_is_refused_the_same_way(tmp_path):
    weights = tmp_path / "weights.pt"
    weights.write_bytes(b"not a zip or pickle")
    with pytest.raises(CheckpointMismatchError, match="pretrained_path .*weights.pt cannot be read"):
        create_model(ModelConfig(name="test_resnet", in_chans=1, img_size=32, pretrained_path=str(weights)))
