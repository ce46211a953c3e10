"""The training engine: AdamW + warm-up/cosine, AMP, accumulation, guards, per-epoch validation, checkpoints, resume.

Randomness is a pure function of ``(seed, epoch)``: every epoch reseeds python/numpy/torch and derives its batch order
and augmentation from ``numpy.random.default_rng([seed, epoch, ...])``. A resumed run therefore replays the remaining
epochs exactly like an uninterrupted one (bit-identical on CPU with ``deterministic=True``) without storing RNG states.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fer_core.config import FrozenModel
from fer_core.data.device_batches import upload
from fer_core.errors import CheckpointMismatchError, ConfigError, DataIntegrityError
from fer_core.evaluate.metrics import classification_metrics
from fer_core.io import sha256_json
from fer_core.losses._registry import LOSSES
from fer_core.models.backbones import create_model
from fer_core.models.checkpoint import CheckpointMeta, read_checkpoint
from fer_core.sink import MetricsSink, NullSink
from fer_core.taxonomy import FER_CLASSES, MINORITY_CLASSES
from fer_core.train.config import TrainConfig
from fer_core.train.keeper import CheckpointKeeper
from fer_core.train.monitor import ClassLossTracker, check_epoch_gates, check_grad_gate, log_flag_summary, norm_stats
from fer_core.train.optim import build_optimizer, build_scheduler
from fer_core.train.predict import predict_logits
from fer_core.train.protocols import Criterion, TrainData
from fer_core.train.sampler import ClassBalancedBatchSampler
from fer_core.train.step import FaultInjector, OptimizerFactory, RunnerFactory, StepOutput, StepRunner, resolve_outputs

log = logging.getLogger(__name__)
CheckpointHook = Callable[[Path], None]


class TrainResult(FrozenModel):
    """What a training run produced. Metrics are the last epoch's (the final model), not the best epoch's.

    Attributes:
        last_checkpoint: ``out_dir/last.pt`` (final weights + resume state).
        best_checkpoints: ``{"macro_f1": [...], "minority_f1": [...]}`` top-k paths, best first.
        history: one dict per epoch (``epoch``, ``lr``, ``train/*``, ``grad_norm/*``, ``train_loss/<cls>``, ``val/*``).
        final_metrics: last epoch's validation metrics (``loss``, ``accuracy``, ``macro_f1``, ``minority_f1``,
            ``f1/*``).
        flags: per-class loss jumps ``{"epoch", "class", "loss", "running_median"}``.
        wall_time_s: wall time of this call.
        throughput_img_s: training images per second over this call's training loops.
        oom_events: OOM back-offs ``{"step", "epoch", "old_micro_batch", "micro_batch", "accum_steps", ...}``.
        start_epoch: first epoch this call ran (> 0 after a resume).
        micro_batch: final micro-batch size.
        accum_steps: final accumulation steps (effective batch = ``cfg.batch_size``).
    """

    last_checkpoint: Path
    best_checkpoints: dict[str, list[Path]]
    history: list[dict[str, float]]
    final_metrics: dict[str, float]
    flags: list[dict[str, Any]]
    wall_time_s: float
    throughput_img_s: float
    oom_events: list[dict[str, int]]
    start_epoch: int
    micro_batch: int
    accum_steps: int


@contextlib.contextmanager
def _runtime(cfg: TrainConfig) -> Iterator[torch.device]:
    """Pick the device and set threads/determinism for the run, restoring the process settings afterwards."""
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' but CUDA is not available; use device='auto' or 'cpu'")
    device = torch.device("cuda" if cfg.device != "cpu" and torch.cuda.is_available() else "cpu")
    old_threads, old_det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    old_warn, old_bench = torch.is_deterministic_algorithms_warn_only_enabled(), torch.backends.cudnn.benchmark
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    if device.type == "cuda":
        # autotuned convolutions (fixed batch shapes) unless the run asks for repeatable kernels
        torch.backends.cudnn.benchmark = not cfg.deterministic
    if cfg.deterministic:
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        # warn_only: an op without a deterministic kernel (some CUDA backward passes) warns instead of aborting the
        # run; CPU training is bit-exact (tested).
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield device
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)
        torch.backends.cudnn.benchmark = old_bench


def _seed_epoch(seed: int, epoch: int) -> None:
    s = (seed * 1_000_003 + epoch + 1) % (2**31)
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)


def _amp(cfg: TrainConfig, device: torch.device) -> tuple[torch.dtype | None, torch.amp.GradScaler | None]:
    if not cfg.amp or device.type != "cuda":
        return None, None
    if torch.cuda.is_bf16_supported():
        return torch.bfloat16, None
    return torch.float16, torch.amp.GradScaler("cuda")


def _check_data(data: TrainData, name: str, n_classes: int) -> None:
    if len(data) == 0:
        raise DataIntegrityError(f"{name} data is empty")
    labels = np.asarray(data.labels)
    problems = [(f"{name} row {i} ({data.sample_ids[i]})", f"label {int(labels[i])} outside [0, {n_classes - 1}]")
                for i in np.flatnonzero((labels < 0) | (labels >= n_classes))]  # fmt: skip
    if len(data.sample_ids) != len(data):
        problems.append((name, f"{len(data.sample_ids)} sample_ids for {len(data)} rows"))
    if problems:
        raise DataIntegrityError(f"{name} data is invalid", problems)


def _with_augment(data: TrainData, cfg: TrainConfig) -> TrainData:
    """The training data with ``cfg.augment`` applied (unchanged when the config leaves augmentation to the data)."""
    if cfg.augment is None:
        return data
    if not hasattr(data, "with_augment"):
        raise ConfigError(f"TrainConfig.augment is set but the training data ({type(data).__name__}) takes no "
                          "augmentation config; leave augment unset for it")  # fmt: skip
    return data.with_augment(cfg.augment)


def _for_run(data: TrainData, cfg: TrainConfig, device: torch.device) -> TrainData:
    """The data as the model takes it, where the run computes.

    Data that can (an :class:`~fer_core.data.dataset.ArrayDataset`) is given the model's input, ``model.img_size``
    square × ``model.in_chans``, when its stored size differs (each batch is then resized on the device) and is moved
    to the run's device (pixels uploaded once); other data is used as it is.
    """
    m = cfg.model
    spec = getattr(data, "spec", None)
    if hasattr(data, "for_input") and spec is not None and (tuple(spec.size), spec.channels) != (
        (m.img_size, m.img_size), m.in_chans):  # fmt: skip
        data = data.for_input(m.img_size, m.in_chans)
    return data.to(device) if hasattr(data, "to") else data


def _class_names(n: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if n == len(FER_CLASSES):
        return FER_CLASSES, MINORITY_CLASSES
    return tuple(f"class_{i}" for i in range(n)), ()


def _batches(cfg: TrainConfig, data: TrainData, epoch: int, n_classes: int) -> list[np.ndarray]:
    """Index batches ``[batch_size]`` of one epoch (a final batch of 1 is dropped: BatchNorm cannot train on it)."""
    if cfg.balanced_sampler:
        sampler = ClassBalancedBatchSampler(data.labels, cfg.batch_size, 2, cfg.seed, n_classes)
        sampler.set_epoch(epoch)
        return list(sampler)
    perm = np.random.default_rng([cfg.seed, epoch, 0]).permutation(len(data))
    batches = [perm[i : i + cfg.batch_size] for i in range(0, len(perm), cfg.batch_size)]
    if batches and (len(batches[-1]) < 2 or (cfg.drop_last and len(batches[-1]) < cfg.batch_size)):
        batches.pop()
    if not batches:
        raise ConfigError(f"{len(data)} training rows give no batch of >= 2 with batch_size {cfg.batch_size}")
    return batches


def adamw(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The engine's default optimizer factory: the one ``cfg.optimizer`` describes (default AdamW, no weight decay
    on 1-D parameters); see :func:`fer_core.train.optim.build_optimizer`."""
    return build_optimizer(model, cfg)


def _run_config(cfg: TrainConfig, extra: dict[str, Any] | None) -> dict[str, Any]:
    """The config recorded in checkpoints and hashed for resume: the TrainConfig (less where it runs:
    :data:`~fer_core.train.config.RUNTIME_FIELDS`) plus a plug-in's own sections."""
    base = cfg.identity()
    clash = sorted(set(base) & set(extra or {}))
    if clash:
        raise ConfigError(f"extra_config keys {clash} collide with TrainConfig fields; nest them under a new key")
    return base | (extra or {})


@dataclass
class _Pending:
    """A step whose outputs are not read back yet: its output, labels ``[B]``, batch number and global step."""

    out: StepOutput
    y: torch.Tensor
    i: int
    gstep: int


@dataclass
class _EpochSums:
    """An epoch's running accounts: loss-term sums, gradient norms (all and since the last log) and pending steps."""

    sums: dict[str, float] = field(default_factory=dict)
    norms: list[float] = field(default_factory=list)
    window: list[float] = field(default_factory=list)
    pending: list[_Pending] = field(default_factory=list)


class _Run:
    """State of one training call (split out of :func:`train` to keep functions short)."""

    def __init__(self, cfg: TrainConfig, train_data: TrainData, val_data: TrainData, out_dir: Path,
                 sink: MetricsSink, criterion: Criterion | None, model: nn.Module | None,
                 fault_injector: FaultInjector | None, dataset_sha256: str, device: torch.device,
                 optimizer_factory: OptimizerFactory, runner_factory: RunnerFactory,
                 extra_config: dict[str, Any] | None, on_checkpoint: CheckpointHook | None = None):  # fmt: skip
        n_classes = cfg.model.num_classes
        train_data = _for_run(_with_augment(train_data, cfg), cfg, device)
        val_data = _for_run(val_data, cfg, device)
        _check_data(train_data, "train", n_classes)
        _check_data(val_data, "val", n_classes)
        self.cfg, self.train_data, self.val_data, self.sink = cfg, train_data, val_data, sink
        self.device, self.dataset_sha256 = device, dataset_sha256
        self.classes, minority = _class_names(n_classes)
        self.minority = minority
        _seed_epoch(cfg.seed, -1)  # the initial weights depend on the seed only
        self.model = (model if model is not None else create_model(cfg.model)).to(device)
        channels_last = cfg.channels_last and device.type == "cuda"
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        counts = np.bincount(np.asarray(train_data.labels), minlength=n_classes)
        if criterion is None:
            criterion = LOSSES.get(cfg.loss.kind).from_config(cfg.loss, counts)
        if isinstance(criterion, nn.Module):
            criterion.to(device)
        optimizer = optimizer_factory(self.model, cfg)
        spe = len(_batches(cfg, train_data, 0, n_classes))
        scheduler = build_scheduler(optimizer, cfg, spe)
        amp_dtype, scaler = _amp(cfg, device)
        self.runner = runner_factory(self.model, optimizer, scheduler, criterion, device,
                                     micro_batch=math.ceil(cfg.batch_size / cfg.accum_steps),
                                     clip_grad_norm=cfg.clip_grad_norm, amp_dtype=amp_dtype, scaler=scaler,
                                     fault_injector=fault_injector, defer=cfg.log_every > 1,
                                     channels_last=channels_last, compile_model=cfg.compile)  # fmt: skip
        self.keeper = CheckpointKeeper(out_dir, cfg.topk)
        self.on_checkpoint = on_checkpoint
        self.tracker = ClassLossTracker(self.classes)
        self.history: list[dict[str, float]] = []
        self.flags: list[dict[str, Any]] = []
        self.start_epoch, self.gstep, self.initial_loss = 0, 0, float("nan")
        self.img_seen, self.train_time = 0, 0.0
        self.config = _run_config(cfg, extra_config)
        self.cfg_hash = sha256_json(self.config)
        self._maybe_resume()

    def _maybe_resume(self) -> None:
        path = self.keeper.last_path
        if not path.is_file():
            return
        obj = read_checkpoint(path)
        ts = obj.get("train_state")
        if ts is None:
            raise CheckpointMismatchError(f"{path} holds no resume state; move it away or use a new out_dir")
        if ts["config_hash"] != self.cfg_hash:
            raise ConfigError(f"{path} belongs to a run with a different TrainConfig (or plug-in config); use a new "
                              "out_dir to start over")  # fmt: skip
        self.model.load_state_dict(obj["state_dict"])
        r = self.runner
        r.optimizer.load_state_dict(ts["optimizer"])
        r.scheduler.load_state_dict(ts["scheduler"])
        if r.scaler is not None and ts.get("scaler"):
            r.scaler.load_state_dict(ts["scaler"])
        r.micro_batch, r.oom_events = int(ts["micro_batch"]), list(ts["oom_events"])
        self.history, self.flags = list(ts["history"]), list(ts["flags"])
        self.tracker.load(ts["class_loss_past"])
        self.keeper.load(ts["best"])
        self.gstep, self.initial_loss = int(ts["global_step"]), float(ts["initial_loss"])
        self.start_epoch = int(ts["epoch"]) + 1
        log.info("resumed from %s after epoch %d (global step %d)", path, ts["epoch"], self.gstep)

    def fit(self) -> TrainResult:
        t0 = time.perf_counter()
        self.sink.log_params({"model": self.cfg.model.name, "loss": self.cfg.loss.kind, "epochs": self.cfg.epochs,
                              "batch_size": self.cfg.batch_size, "lr": self.cfg.lr, "seed": self.cfg.seed,
                              "start_epoch": self.start_epoch})  # fmt: skip
        for epoch in range(self.start_epoch, self.cfg.epochs):
            row = self._train_epoch(epoch)
            row.update(self._validate())
            self._end_epoch(epoch, row)
        log_flag_summary(self.flags, self.tracker.factor)  # once per run, not per epoch
        return self._result(time.perf_counter() - t0)

    def _get_batch(self, rows: np.ndarray, rng: np.random.Generator, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            return self.train_data.get_batch(rows, train=True, rng=rng)
        except DataIntegrityError:
            raise
        except Exception as e:
            ids = [self.train_data.sample_ids[i] for i in rows]
            raise DataIntegrityError(
                f"training data failed at epoch {epoch}, global step {self.gstep}; fix the data (nothing is skipped)",
                [(f"batch of {len(rows)} (sample_ids {ids[:8]}...)", f"{type(e).__name__}: {e}")],
            ) from e

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        cfg = self.cfg
        _seed_epoch(cfg.seed, epoch)
        self.model.train()
        if hasattr(self.model, "set_epoch"):
            self.model.set_epoch(epoch)
        rng = np.random.default_rng([cfg.seed, epoch, 1])
        acc = _EpochSums()
        n_img, data_s, t = 0, 0.0, time.perf_counter()
        for i, rows in enumerate(_batches(cfg, self.train_data, epoch, cfg.model.num_classes)):
            t_data = time.perf_counter()
            x, y = self._get_batch(rows, rng, epoch)
            data_s += time.perf_counter() - t_data
            ids = [self.train_data.sample_ids[r] for r in rows]
            try:
                out = self.runner.step(x, y, upload(np.asarray(rows, np.int64), self.device, torch.int64), ids,
                                       epoch, self.gstep)  # fmt: skip
            except Exception:
                resolve_outputs([p.out for p in acc.pending])  # a step that diverged earlier is the cause: name it
                raise
            acc.pending.append(_Pending(out, y, i, self.gstep))
            n_img += len(rows)
            self.gstep += 1
            if self.gstep % cfg.log_every == 0 or self.gstep % cfg.grad_log_every == 0:
                self._flush(acc, epoch)
        self._flush(acc, epoch)
        extra = self.runner.end_epoch(epoch)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t
        self.train_time, self.img_seen = self.train_time + dt, self.img_seen + n_img
        row = {"epoch": float(epoch), "lr": float(self.runner.optimizer.param_groups[0]["lr"]),
               "train/img_per_s": n_img / dt, "micro_batch": float(self.runner.micro_batch)}  # fmt: skip
        # host time building batches / epoch time (on CUDA an upper bound of the GPU's wait for data); a timing,
        # so the sink gets it and the replayable history does not
        self.sink.log_metrics({"train/data_frac": data_s / dt}, step=epoch)
        row.update({f"train/{k}": v / n_img for k, v in acc.sums.items()})
        row.update(norm_stats(acc.norms))
        row.update(extra)
        means, flags = self.tracker.end_epoch(epoch)
        row.update(means)
        self.flags.extend(flags)
        for f in flags:
            self.sink.log_metrics({f"flag/loss_jump/{f['class']}": float(f["loss"])}, step=epoch)
        return row

    def _flush(self, acc: _EpochSums, epoch: int) -> None:
        """Read the pending steps back (one device sync) and account them in step order, as if read one by one:
        divergence and gradient gates (naming the step), per-class losses, sums, gradient-norm logs."""
        if not acc.pending:
            return
        pending, acc.pending = acc.pending, []
        outs = resolve_outputs([p.out for p in pending])
        ces = torch.cat([o.per_sample_ce.detach() for o in outs]).double().cpu()
        ys = torch.cat([p.y for p in pending]).cpu()
        start = 0
        for p, out in zip(pending, outs, strict=True):
            n = len(p.y)
            if math.isfinite(out.grad_norm):  # fp16 only: an inf norm is a step the GradScaler skipped
                check_grad_gate(self.cfg.smoke, out.grad_norm, p.gstep)
                acc.norms.append(out.grad_norm)
                acc.window.append(out.grad_norm)
            self.tracker.update(ces[start : start + n], ys[start : start + n])
            start += n
            for k, v in out.terms.items():
                acc.sums[k] = acc.sums.get(k, 0.0) + v * n
            if epoch == 0 and p.i < 5:  # the smoke gate's reference: mean loss of the first 5 steps
                prev = self.initial_loss * p.i if p.i else 0.0
                self.initial_loss = (prev + out.terms["loss"]) / (p.i + 1)
            if (p.gstep + 1) % self.cfg.grad_log_every == 0:  # flushed at this step: lr is still that step's
                lr = self.runner.optimizer.param_groups[0]["lr"]
                self.sink.log_metrics({**norm_stats(acc.window), "lr": lr}, step=p.gstep + 1)
                acc.window = []

    def _validate(self) -> dict[str, float]:
        logits = predict_logits(self.model, self.val_data, self.cfg.batch_size, str(self.device))
        y = np.asarray(self.val_data.labels, dtype=np.int64)
        loss = float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(y.copy())))  # labels may be read-only
        metrics = classification_metrics(y, logits.argmax(1), self.classes, self.minority)
        return {"val/loss": loss, **{f"val/{k}": v for k, v in metrics.items()}}

    def _end_epoch(self, epoch: int, row: dict[str, float]) -> None:
        self.history.append(row)
        self.sink.log_metrics(row, step=epoch)
        smoke = self.cfg.smoke
        if smoke is not None:
            gate_epoch = min(smoke.check_epochs, self.cfg.epochs) - 1
            if epoch < gate_epoch:
                return
            if epoch == gate_epoch:
                check_epoch_gates(smoke, self.initial_loss, row["train/loss"], row["val/macro_f1"], row["val/loss"])
        metrics = {k[4:]: v for k, v in row.items() if k.startswith("val/")}
        spec = getattr(self.train_data, "spec", None)
        meta = CheckpointMeta.for_model(
            self.cfg.model, classes=self.classes, dataset_sha256=self.dataset_sha256,
            config=self.config, metrics=metrics, epoch=epoch,
            **({"mean": tuple(spec.mean), "std": tuple(spec.std)} if spec is not None else {}),
        )  # fmt: skip
        self.keeper.save_best(self.model, meta, metrics)
        last = self.keeper.save_last(self.model, meta, self._train_state(epoch))
        if self.on_checkpoint is not None:
            self.on_checkpoint(last)

    def _train_state(self, epoch: int) -> dict[str, Any]:
        r = self.runner
        return {"epoch": epoch, "global_step": self.gstep, "config_hash": self.cfg_hash,
                "optimizer": r.optimizer.state_dict(), "scheduler": r.scheduler.state_dict(),
                "scaler": r.scaler.state_dict() if r.scaler is not None else None,
                "micro_batch": r.micro_batch, "oom_events": list(r.oom_events), "history": self.history,
                "flags": self.flags, "class_loss_past": self.tracker.state(),
                "initial_loss": self.initial_loss}  # fmt: skip

    def _result(self, wall: float) -> TrainResult:
        last = self.history[-1] if self.history else {}
        micro = self.runner.micro_batch
        return TrainResult(
            last_checkpoint=self.keeper.last_path, best_checkpoints=self.keeper.best_paths(), history=self.history,
            final_metrics={k[4:]: v for k, v in last.items() if k.startswith("val/")}, flags=self.flags,
            wall_time_s=wall, throughput_img_s=self.img_seen / self.train_time if self.train_time else 0.0,
            oom_events=self.runner.oom_events, start_epoch=self.start_epoch, micro_batch=micro,
            accum_steps=math.ceil(self.cfg.batch_size / micro),
        )  # fmt: skip


def train(
    cfg: TrainConfig,
    train_data: TrainData,
    val_data: TrainData,
    out_dir: Path,
    sink: MetricsSink = NullSink(),
    criterion: Criterion | None = None,
    model: nn.Module | None = None,
    fault_injector: FaultInjector | None = None,
    dataset_sha256: str = "",
    optimizer_factory: OptimizerFactory = adamw,
    runner_factory: RunnerFactory = StepRunner,
    extra_config: dict[str, Any] | None = None,
    on_checkpoint: CheckpointHook | None = None,
) -> TrainResult:
    """Train a model, validating and checkpointing every epoch; resumes from ``out_dir/last.pt`` when present.

    Args:
        cfg: training configuration.
        train_data: training set (ArrayDataset protocol); ``get_batch`` gives ``x [B, C, H, W]``, ``y [B]``.
        val_data: validation set (same protocol), evaluated every epoch.
        out_dir: run folder (``last.pt``, ``best/<metric>/epoch_XXX.pt``).
        sink: receives per-epoch rows (step = epoch) and gradient statistics (step = global step).
        criterion: ``criterion(logits [B, C], targets [B], idx [B] row positions on the device, epoch)`` -> dict
            with ``"loss"``; default built from ``cfg.loss`` with the training class counts.
        model: a prebuilt model (e.g. a student with a custom head); default ``create_model(cfg.model)``.
        fault_injector: test hook called as ``fault_injector(global_step, micro_batch)`` before every micro-batch.
        dataset_sha256: recorded in checkpoint metadata.
        optimizer_factory: ``(model, cfg) -> torch.optim.Optimizer``; default :func:`adamw`. The optimizer is wrapped
            in the warm-up/cosine schedule and its ``state_dict()`` is the resume state, so it must hold all of it.
        runner_factory: builds the per-step runner with :class:`~fer_core.train.step.StepRunner`'s arguments; a
            subclass may change how a step computes its update (Nested Learning's meta windows plug in here).
        extra_config: a plug-in's own config sections, recorded in checkpoint metadata beside the TrainConfig and
            part of the resume check (a ``last.pt`` of other sections is refused).
        on_checkpoint: called with the path of ``last.pt`` each time it is written (the orchestration layer copies
            it to the artifact store, so a unit re-run on another node resumes from there).

    Returns:
        :class:`TrainResult` (final = last epoch).

    Raises:
        TrainingDivergedError: NaN/Inf loss or gradients (names step, epoch, sample ids).
        DataIntegrityError: invalid data or a failing ``get_batch`` (never skipped).
        GateFailedError: a smoke gate failed.
        ConfigError: ``out_dir`` holds a run of another config, or CUDA was requested but is absent.
    """
    with _runtime(cfg) as device:
        return _Run(cfg, train_data, val_data, Path(out_dir), sink, criterion, model, fault_injector,
                    dataset_sha256, device, optimizer_factory, runner_factory, extra_config,
                    on_checkpoint).fit()  # fmt: skip
