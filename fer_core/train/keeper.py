"""Checkpoint bookkeeping for a run: ``last.pt`` every epoch and the top-k epochs per validation metric."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from fer_core.models.checkpoint import CheckpointMeta, save_checkpoint

RANKED = ("macro_f1", "minority_f1")


class CheckpointKeeper:
    """Writes ``out_dir/last.pt`` and ``out_dir/best/<metric>/epoch_XXX.pt`` (top-k, higher is better).

    Args:
        out_dir: run folder.
        topk: best checkpoints kept per metric.
    """

    def __init__(self, out_dir: Path, topk: int):
        self.out_dir = Path(out_dir)
        self.topk = topk
        self.best: dict[str, list[tuple[float, int]]] = {m: [] for m in RANKED}

    @property
    def last_path(self) -> Path:
        return self.out_dir / "last.pt"

    def best_path(self, metric: str, epoch: int) -> Path:
        return self.out_dir / "best" / metric / f"epoch_{epoch:03d}.pt"

    def best_paths(self) -> dict[str, list[Path]]:
        """Best checkpoints per metric, best first."""
        return {m: [self.best_path(m, e) for _, e in ranked] for m, ranked in self.best.items()}

    def save_best(self, model: nn.Module, meta: CheckpointMeta, metrics: dict[str, float]) -> None:
        """Add this epoch to each ranking it enters; delete checkpoints that fall out of the top-k."""
        for m in RANKED:
            score = float(metrics.get(m, float("-inf")))
            ranked = self.best[m]
            if len(ranked) >= self.topk and score <= ranked[-1][0]:
                continue
            save_checkpoint(self.best_path(m, meta.epoch), model, meta)
            ranked.append((score, meta.epoch))
            # Ties keep the earlier epoch first.
            ranked.sort(key=lambda t: (-t[0], t[1]))
            for _, dropped in ranked[self.topk :]:
                self.best_path(m, dropped).unlink(missing_ok=True)
            del ranked[self.topk :]

    def save_last(self, model: nn.Module, meta: CheckpointMeta, train_state: dict[str, Any]) -> Path:
        train_state = {**train_state, "best": {m: [[s, e] for s, e in r] for m, r in self.best.items()}}
        return save_checkpoint(self.last_path, model, meta, train_state)

    def load(self, best: dict[str, list[list[float]]]) -> None:
        self.best = {m: [(float(s), int(e)) for s, e in best.get(m, [])] for m in RANKED}
