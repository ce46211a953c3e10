"""Protocol-Lite scoring of a runner log (``frames.csv`` + ``events.jsonl`` with operator label events)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from fer_core.errors import DataIntegrityError
from fer_core.io import atomic_write_json

HOLD_MS, SETTLE_MS = 600.0, 250.0


def _read_events(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise DataIntegrityError(f"events log {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        where = [(str(path), f"undecodable byte at offset {e.start}")]
        raise DataIntegrityError(f"events log {path} is not UTF-8 text; give the runner's events.jsonl", where) from e
    events = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                event = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataIntegrityError(f"{path}:{n}: not JSON ({e})", [(f"{path}:{n}", "bad JSON line")]) from e
            if not isinstance(event, dict):
                what = f"a JSON {type(event).__name__}, not an object"
                raise DataIntegrityError(f"{path}:{n}: an event must be a JSON object", [(f"{path}:{n}", what)])
            if event.get("type") == "true_label" and not _is_number(event.get("t")):
                raise DataIntegrityError(f"{path}:{n}: a label event needs a numeric time 't'",
                                         [(f"{path}:{n}", f"t = {event.get('t')!r}")])  # fmt: skip
            events.append(event)
    return events


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)


_FRAME_COLUMNS = ["timestamp_s", "frame", "w", "h", "smoothed_label"]


def _primary_track(csv_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: timestamp and the smoothed label of the largest face (``unknown`` when no face)."""
    if not csv_path.is_file():
        raise DataIntegrityError(f"frame log {csv_path} does not exist")
    try:
        df = pd.read_csv(csv_path, usecols=_FRAME_COLUMNS)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:  # EmptyDataError is a ValueError
        why = [(str(csv_path), (str(e).splitlines() or [type(e).__name__])[0][:300])]
        raise DataIntegrityError(f"frame log {csv_path} is not the runner's frames.csv (needs the columns "
                                 f"{', '.join(_FRAME_COLUMNS)})", why) from e  # fmt: skip
    if df.empty:
        raise DataIntegrityError(f"frame log {csv_path} has no rows")
    problems = []
    for col in ("timestamp_s", "frame", "w", "h"):
        num = pd.to_numeric(df[col], errors="coerce")
        bad = num.isna() if col in ("timestamp_s", "frame") else num.isna() & df[col].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            problems.append((f"{csv_path} row {row + 2}", f"{col} = {df[col].iloc[row]!r} is not a number"))
        df[col] = num
    if problems:
        raise DataIntegrityError(f"frame log {csv_path} has non-numeric values", problems)
    df["area"] = (df["w"] * df["h"]).fillna(-1.0)
    df = df.sort_values(["frame", "area"], ascending=[True, False]).drop_duplicates("frame")
    return df["timestamp_s"].to_numpy(np.float64), df["smoothed_label"].fillna("unknown").astype(str).to_numpy()


def _time_to_lock(t: np.ndarray, pred: np.ndarray, label: str, start: float, end: float, hold: float) -> float | None:
    ok = pred == label
    for i in np.flatnonzero(ok):
        if t[i] + hold > end:
            return None
        stay = (t >= t[i]) & (t <= t[i] + hold)
        if ok[stay].all():
            return float(t[i] - start)
    return None


def _segments(events: list[dict[str, Any]], t_end: float, where: Path) -> list[tuple[float, float, str | None]]:
    labels = sorted((float(e["t"]), e.get("label")) for e in events if e.get("type") == "true_label")
    if not labels:
        raise DataIntegrityError(
            f"{where}: no operator label events (type 'true_label'); press 1-7 during the session (or script them "
            "with a key file) so Protocol-Lite has ground truth to score against"
        )
    return [(t0, labels[i + 1][0] if i + 1 < len(labels) else t_end, lab) for i, (t0, lab) in enumerate(labels)]


def score(
    log: str | os.PathLike[str],
    events_path: str | os.PathLike[str] | None = None,
    hold_ms: float = HOLD_MS,
    settle_ms: float = SETTLE_MS,
    grace_ms: float | None = None,
    out: str | os.PathLike[str] | None = None,
) -> tuple[dict[str, Any], str]:
    """Score a labelled session.

    Segments run from one operator label event to the next (a cleared label is not scored). A segment shorter than
    ``hold_ms`` is dropped (and counted). In each segment the first ``settle_ms`` + ``grace_ms`` are excluded;
    ``grace_ms`` defaults to the vote window's duration (window / fps from the log's ``session_start`` event).

    Args:
        log: the run folder (holding ``frames.csv`` and ``events.jsonl``) or the CSV path.
        events_path: the events log when ``log`` is a CSV path elsewhere.
        out: also write ``{"metrics": ..., "table": ...}`` as JSON to this file, atomically and only when scoring
            succeeded (a failure leaves no file, and an existing one untouched).

    Returns:
        ``(metrics, table)``: ``accuracy`` and ``unknown_rate`` over evaluated frames (unknown counts as wrong),
        ``macro_f1`` over the labels present, ``jitter_per_min`` (smoothed-label changes per evaluated minute),
        ``time_to_lock_ms_median`` (first time the label is right and stays right for ``hold_ms``), segment
        counts, and ``segments`` (one dict each); ``table`` is a plain-text summary.

    Raises:
        DataIntegrityError: missing files, no label events, or no frame left to evaluate.
    """
    p = Path(log)
    csv_path = p / "frames.csv" if p.is_dir() else p
    ev_path = Path(events_path) if events_path else csv_path.parent / "events.jsonl"
    events = _read_events(ev_path)
    t, pred = _primary_track(csv_path)
    if grace_ms is None:
        start = next((e for e in events if e.get("type") == "session_start"), {})
        window = (start.get("stabilizer") or {}).get("window", 0)
        grace_ms = 1000.0 * window / float(start.get("fps") or 30.0)
    excl, hold = (settle_ms + grace_ms) / 1000.0, hold_ms / 1000.0
    dt = float(np.median(np.diff(t))) if len(t) > 1 else 0.0
    segs = _segments(events, float(t[-1]) + dt, ev_path)
    y_true, y_pred, changes, minutes, dropped, rows = [], [], 0, 0.0, 0, []
    for t0, t1, label in segs:
        if label is None:
            continue
        if t1 - t0 < hold:
            dropped += 1
            continue
        m = (t >= t0 + excl) & (t < t1)
        seg_pred = pred[m]
        y_true += [label] * len(seg_pred)
        y_pred += list(seg_pred)
        changes += int(np.count_nonzero(seg_pred[1:] != seg_pred[:-1]))
        minutes += max(0.0, t1 - t0 - excl) / 60.0
        in_seg = (t >= t0) & (t < t1)
        ttl = _time_to_lock(t[in_seg], pred[in_seg], label, t0, t1, hold)
        acc = float(np.mean(seg_pred == label)) if len(seg_pred) else float("nan")
        rows.append({"start_s": t0, "end_s": t1, "label": label, "frames": int(len(seg_pred)), "accuracy": acc,
                     "time_to_lock_ms": None if ttl is None else ttl * 1000.0})  # fmt: skip
    if not y_true:
        raise DataIntegrityError(f"{csv_path}: no frame left to score ({dropped} segment(s) shorter than {hold_ms} ms)")
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    locks = [r["time_to_lock_ms"] for r in rows if r["time_to_lock_ms"] is not None]
    metrics: dict[str, Any] = {
        "accuracy": float(np.mean(yt == yp)),
        "macro_f1": float(f1_score(yt, yp, labels=sorted(set(y_true)), average="macro", zero_division=0.0)),
        "jitter_per_min": changes / minutes if minutes > 0 else 0.0,
        "time_to_lock_ms_median": float(np.median(locks)) if locks else None,
        "locked_segments": len(locks),
        "unknown_rate": float(np.mean(yp == "unknown")),
        "scored_segments": len(rows),
        "dropped_segments": dropped,
        "evaluated_frames": int(len(yt)),
        "excluded_ms_after_change": settle_ms + grace_ms,
        "segments": rows,
    }
    table = score_table(metrics)
    if out is not None:
        atomic_write_json(out, {"metrics": metrics, "table": table})
    return metrics, table


def score_table(metrics: dict[str, Any]) -> str:
    """Plain-text table of :func:`score`'s metrics and segments."""
    lines = [
        f"{k:<26}{v:.4f}" if isinstance(v, float) else f"{k:<26}{v}" for k, v in metrics.items() if k != "segments"
    ]
    lines += ["", f"{'start_s':>9} {'end_s':>9} {'label':<10}{'frames':>7} {'acc':>6} {'lock_ms':>8}"]
    for r in metrics["segments"]:
        lock = "-" if r["time_to_lock_ms"] is None else f"{r['time_to_lock_ms']:.0f}"
        lines.append(
            f"{r['start_s']:>9.2f} {r['end_s']:>9.2f} {r['label']:<10}{r['frames']:>7} {r['accuracy']:>6.3f} {lock:>8}"
        )
    return "\n".join(lines)
