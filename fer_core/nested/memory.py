"""The associative memory (a tiny per-element MLP) that replaces AdamW's momentum, and memory-usage probes."""

from __future__ import annotations

import resource
import tracemalloc
from pathlib import Path

import torch
from torch import Tensor, nn


class MemoryMLP(nn.Module):
    """Maps per-element features ``[P, F]`` to a correction ``[P]`` of the momentum (shared across all elements).

    Args:
        in_features: F (features per parameter element).
        hidden_dim: width of the hidden layers.
        layers: number of linear layers (1 = linear map).
        init_scale: std of the last layer's initial weights; small, so the optimizer starts close to its EMA prior
            yet every layer receives meta-gradients from the first step.
    """

    def __init__(self, in_features: int = 2, hidden_dim: int = 8, layers: int = 2, init_scale: float = 1e-2):
        super().__init__()
        dims = [in_features] + [hidden_dim] * (layers - 1) + [1]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))
        nn.init.normal_(self.linears[-1].weight, std=init_scale)
        nn.init.zeros_(self.linears[-1].bias)

    def forward(self, feats: Tensor) -> Tensor:
        h = feats
        for i, lin in enumerate(self.linears):
            h = lin(h)
            if i < len(self.linears) - 1:
                h = torch.tanh(h)
        return h.squeeze(-1)


def _rss_mb() -> float:
    statm = Path("/proc/self/statm")
    if not statm.exists():
        return float("nan")
    pages = int(statm.read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def memory_snapshot(device: torch.device) -> dict[str, float]:
    """Peak/current memory in MiB: CUDA allocator peak on GPU; peak and current RSS (+ tracemalloc if on) on CPU."""
    if device.type == "cuda":
        return {
            "mem/cuda_peak_mb": torch.cuda.max_memory_allocated(device) / 2**20,
            "mem/cuda_now_mb": torch.cuda.memory_allocated(device) / 2**20,
        }
    out = {"mem/rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "mem/rss_mb": _rss_mb()}
    if tracemalloc.is_tracing():
        out["mem/tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    return out
