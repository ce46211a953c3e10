"""Batched inference: logits for a whole dataset, in data order."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fer_core.train.protocols import TrainData


@torch.no_grad()
def predict_logits(model: nn.Module, data: TrainData, batch_size: int = 256, device: str = "cpu") -> np.ndarray:
    """Logits of every row of ``data``, in row order (eval mode, no augmentation, no grad).

    Args:
        model: maps ``[B, C_in, H, W]`` to ``[B, C]``.
        data: a dataset following the ArrayDataset protocol.
        batch_size: rows per forward pass.
        device: where to run.

    Returns:
        float32 ``[N, C]``.
    """
    was_training = model.training
    model.eval()
    dev = torch.device(device)
    model.to(dev)
    out: list[np.ndarray] = []
    try:
        for start in range(0, len(data), batch_size):
            idx = np.arange(start, min(start + batch_size, len(data)))
            x, _ = data.get_batch(idx, train=False)
            out.append(model(x.to(dev)).float().cpu().numpy())
    finally:
        model.train(was_training)
    if not out:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)
