"""Per-class loss jump flags reach the log once per run (a summary line), never once per epoch."""

import logging

import torch

from fer_core.train.monitor import ClassLossTracker, log_flag_summary, summarize_flags


def run_epochs(tracker: ClassLossTracker, losses_per_epoch: list[list[float]]) -> list[dict]:
    flags = []
    for epoch, losses in enumerate(losses_per_epoch):
        tracker.update(torch.tensor(losses, dtype=torch.float64), torch.arange(len(losses)))
        flags += tracker.end_epoch(epoch)[1]
    return flags


def test_epochs_log_nothing_and_the_summary_is_one_warning(caplog):
    tracker = ClassLossTracker(["angry", "fear", "sad"])
    with caplog.at_level(logging.DEBUG, logger="fer_core.train.monitor"):
        flags = run_epochs(tracker, [[1.0, 1.0, 1.0], [1.0, 3.0, 1.0], [1.0, 5.0, 0.9], [1.0, 1.0, 4.0]])
    assert [(f["epoch"], f["class"]) for f in flags] == [(1, "fear"), (2, "fear"), (3, "sad")]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fer_core.train.monitor"):
        log_flag_summary(flags)
    assert len(caplog.records) == 1
    line = caplog.records[0].getMessage()
    assert "3 time(s): fear (epochs 1, 2); sad (epoch 3)" in line and "flag/loss_jump/<class>" in line


def test_no_flags_no_line(caplog):
    assert summarize_flags([]) is None
    with caplog.at_level(logging.DEBUG, logger="fer_core.train.monitor"):
        log_flag_summary([])
    assert caplog.records == []
