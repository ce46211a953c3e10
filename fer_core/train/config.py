"""Training configuration: the loss tagged union, smoke gates and :class:`TrainConfig`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from fer_core.config import FrozenModel
from fer_core.data.dataset import TrainAugment
from fer_core.errors import ConfigError
from fer_core.losses.ce import CELossConfig
from fer_core.losses.class_balanced import ClassBalancedLossConfig
from fer_core.losses.focal import FocalLossConfig
from fer_core.losses.logit_adjust import LogitAdjustLossConfig
from fer_core.models.config import ModelConfig
from fer_core.train.optim import AdamWConfig, OptimizerConfig, ScheduleConfig, WarmupCosineConfig

LossConfig = Annotated[
    CELossConfig | FocalLossConfig | ClassBalancedLossConfig | LogitAdjustLossConfig, Field(discriminator="kind")
]


class SmokeGates(FrozenModel):
    """Fail-fast checks for a short smoke run (raise GateFailedError; no checkpoint is written before they pass).

    Attributes:
        check_epochs: gates are judged at the end of this many epochs; checkpoints start after that.
        min_loss_drop: the last checked epoch's mean train loss must be at least this fraction below the mean loss
            of the first steps of epoch 0.
        min_macro_f1: validation macro-F1 required at the check epoch.
        max_grad_norm: any optimizer step's gradient norm (before clipping) above this fails immediately.
        max_val_loss: validation loss (mean CE) allowed at the check epoch, or None for no such gate.
    """

    check_epochs: int = Field(2, ge=1)
    min_loss_drop: float = Field(0.10, ge=0, lt=1)
    min_macro_f1: float = Field(0.0, ge=0, le=1)
    max_grad_norm: float = Field(100.0, gt=0)
    max_val_loss: float | None = Field(None, gt=0)


# Where and how fast a run executes, not what it computes: kept out of resume checks and content addresses, so moving a
# unit to a bigger node (more threads) or another device reuses its finished work.
# The device-loop fields (log_every, channels_last, compile) change how often the host looks and which kernels run,
# not what is learned, so they belong here too.
RUNTIME_FIELDS: frozenset[str] = frozenset({"num_threads", "device", "log_every", "channels_last", "compile"})


class TrainConfig(FrozenModel):
    """Everything :func:`fer_core.train.train` needs.

    Attributes:
        model: the model to build (ignored for construction when a model is passed in, still recorded).
        loss: the default criterion (used when no criterion is passed in).
        epochs: training epochs.
        batch_size: effective batch (one optimizer step); split into ``accum_steps`` micro-batches.
        lr: peak learning rate.
        weight_decay: weight decay of the decayed parameter group (``optimizer.decay`` says which parameters).
        warmup_epochs: linear warm-up length (may be fractional) of the ``warmup_cosine`` schedule (with onecycle:
            unused, at its default or 0).
        optimizer: ``{"kind": "adamw" | "sgd", ...}`` (:mod:`fer_core.train.optim`); default AdamW without decay
            on 1-D parameters.
        schedule: ``{"kind": "warmup_cosine" | "onecycle", ...}``, stepped per optimizer step; default warm-up then
            cosine decay to 0.
        accum_steps: micro-batches per optimizer step (initial value; OOM back-off doubles it).
        clip_grad_norm: max global gradient norm, or None for no clipping.
        amp: mixed precision where the device supports it (CUDA: bf16 if supported, else fp16 + GradScaler); CPU: off.
        seed: seeds python, numpy and torch; batch order and augmentation derive from (seed, epoch).
        deterministic: ``torch.use_deterministic_algorithms(True)`` for the run.
        grad_log_every: log gradient-norm statistics every this many optimizer steps.
        balanced_sampler: class-balanced batches (>= 2 per class each) instead of a shuffled pass.
        topk: best checkpoints kept per criterion (macro-F1, minority-F1).
        smoke: smoke-run gates or None.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        num_threads: torch intra-op threads for the run (None: leave as is).
        drop_last: drop a final partial batch (keeps BatchNorm away from size-1 batches).
        augment: the training augmentation (flip, shift, rotation, zoom, erasing, jitter), or None to keep the
            training data's own (an :class:`~fer_core.data.dataset.ArrayDataset` defaults to flip + shift).
        log_every: the host reads losses, gradient norms and the finiteness checks every this many optimizer steps
            (and at each ``grad_log_every`` step and epoch end); a divergence is still named by the step it happened
            at. 1 reads every step and stops before the diverged step's update.
        channels_last: NHWC model and inputs on CUDA (faster convolutions on tensor cores); ignored on CPU.
        compile: run the training forward through ``torch.compile`` (first steps pay the compilation).
    """

    model: ModelConfig
    loss: LossConfig = CELossConfig()
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.05, ge=0)
    warmup_epochs: float = Field(1.0, ge=0)
    optimizer: OptimizerConfig = AdamWConfig()
    schedule: ScheduleConfig = WarmupCosineConfig()
    accum_steps: int = Field(1, ge=1)
    clip_grad_norm: float | None = Field(5.0, gt=0)
    amp: bool = True
    seed: int = 0
    deterministic: bool = False
    grad_log_every: int = Field(50, ge=1)
    balanced_sampler: bool = False
    topk: int = Field(2, ge=1)
    smoke: SmokeGates | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_threads: int | None = Field(None, ge=1)
    drop_last: bool = False
    augment: TrainAugment | None = None
    # The device loop (issue 22); all three are RUNTIME_FIELDS.
    log_every: int = Field(50, ge=1)
    channels_last: bool = True
    compile: bool = False

    @model_validator(mode="after")
    def _one_warmup(self) -> TrainConfig:
        # A dumped config carries the default warm-up beside onecycle and must validate again: only another one is
        # a second, conflicting warm-up.
        if self.schedule.kind == "onecycle" and self.set_off_default("warmup_epochs") and self.warmup_epochs > 0:
            raise ConfigError(f"warmup_epochs={self.warmup_epochs} with schedule onecycle: its warm-up is "
                              "schedule.pct_start; drop warmup_epochs or use schedule warmup_cosine")  # fmt: skip
        return self

    def identity(self) -> dict:
        """The JSON form of what this config computes (without :data:`RUNTIME_FIELDS`): hashed for resume checks
        and for the content address of a run."""
        return self.model_dump(mode="json", exclude=set(RUNTIME_FIELDS))
