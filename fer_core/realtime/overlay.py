"""Drawing of boxes, labels and the tuning HUD on a frame (a copy; the input frame is untouched)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from fer_core.realtime.stabilize import StabilizerConfig


def draw_overlay(
    frame_bgr: np.ndarray, items: list[dict[str, Any]], cfg: StabilizerConfig, true_label: str | None
) -> np.ndarray:
    """Boxes with ``#track label prob`` and a HUD line with α, δ, τ and the operator's label.

    Args:
        frame_bgr: the frame ``[H, W, 3]``.
        items: per face ``{"box": (x, y, w, h), "track": int, "label": str, "prob": float}``.
        cfg: the live stabiliser knobs.
        true_label: the operator's current label (or ``None``).
    """
    img = frame_bgr.copy() if frame_bgr.ndim == 3 else cv2.cvtColor(frame_bgr, cv2.COLOR_GRAY2BGR)
    scale = max(0.4, img.shape[0] / 720.0)
    thick = max(1, round(2 * scale))
    for it in items:
        x, y, w, h = (round(v) for v in it["box"])
        colour = (128, 128, 128) if it["label"] == "unknown" else (0, 200, 0)
        cv2.rectangle(img, (x, y), (x + w, y + h), colour, thick)
        text = f"#{it['track']} {it['label']} {it['prob']:.2f}"
        cv2.putText(img, text, (x, max(0, y - 8)), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, colour, thick)
    hud = (
        f"a={cfg.alpha:.2f} d={cfg.delta:.2f} tau={cfg.unknown_threshold:.2f} "
        f"truth={true_label or '-'}  keys: a/z d/c u/j 1-7 0 q"
    )
    cv2.putText(img, hud, (10, round(24 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, (0, 255, 255), thick)
    return img
