"""Every shipped profile validates; the FER2013 profiles describe what their comments promise."""

from pathlib import Path

import pytest

from fer_core.errors import ConfigError
from fer_core.models import BACKBONES
from fer_core.train.config import TrainConfig
from fer_spec.profile import SweepSection, load_pipeline_config
from tasks.distill import sweep_variants, variant_kind

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
CONFIGS = sorted(CONFIG_DIR.rglob("*.yaml"))  # the experiment profiles under configs/experiments/ too


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_profile_validates_and_names_registered_backbones(path):
    cfg = load_pipeline_config(path)
    names = [t.train.model.name for t in cfg.teachers.teachers] + [cfg.student.train.model.name]
    assert all(n in BACKBONES.names() for n in names)
    assert set(cfg.student.distill.teachers) <= {t.name for t in cfg.teachers.teachers}
    if cfg.student.sweep.enabled:
        assert sweep_variants(cfg.student.distill, cfg.student.sweep)  # the variant filter matches the grid


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_every_train_config_survives_a_dump_round_trip(path):
    """Sweep trials, Prefect parameters and result files carry configs as dumps: each must validate back to itself."""
    cfg = load_pipeline_config(path)
    trains = [t.train for t in cfg.teachers.teachers] + [cfg.student.train]
    for tr in trains:
        assert TrainConfig.model_validate(tr.model_dump()) == tr
        assert TrainConfig.model_validate_json(tr.model_dump_json()) == tr
    assert type(cfg).model_validate(cfg.model_dump(mode="json")) == cfg


def test_fer2013_cpu_profile_is_the_seed_study():
    cfg = load_pipeline_config(CONFIG_DIR / "fer2013_cpu.yaml")
    assert cfg.data.preprocess.size == (48, 48) and cfg.data.preprocess.channels == 1
    # issue 16: >= 6 seeds for the packaged family, 2-3 for the screening families, on the packaged family's seeds
    assert len(cfg.student.seeds) >= 6 and 2 <= len(cfg.student.sweep.seeds) <= 3
    assert set(cfg.student.sweep.seeds) <= set(cfg.student.seeds)  # paired by seed
    kinds = {variant_kind(v) for v in sweep_variants(cfg.student.distill, cfg.student.sweep)}
    packaged = cfg.student.distill.family
    assert kinds | {packaged} == {"ce", "pairwise-kd"}  # the CE baseline screens what distillation adds
    # issue 21: the teachers train as the plain script does (benchmarks/plain_script.py), expressed without code
    for t in cfg.teachers.teachers:
        tr = t.train
        recipe = (tr.model.name, tr.optimizer.kind, tr.optimizer.decay, tr.schedule.kind)
        assert recipe == ("resnet18", "adamw", "all", "onecycle")
        assert (tr.epochs, tr.batch_size, tr.lr, tr.weight_decay, tr.clip_grad_norm) == (15, 128, 0.002, 0.05, None)
        assert tr.loss.label_smoothing == 0.0  # they feed distillation
        assert tr.augment.shift_px == 4 and tr.augment.rotate_deg == 0 and tr.augment.scale == 0  # no resampling
    assert len(cfg.student.distill.teachers) >= 2  # distilled from two teachers
    student = cfg.student.train.model  # the half-width ResNet-18 the student screen chose
    assert student.name == "resnet18" and student.kwargs == {"channels": [32, 64, 128, 256]}
    assert cfg.data.ingest.derived_copies == "drop"  # as the plain script does (docs/fer2013_recipe.md section 8)
    ens_t = cfg.ensemble.temperatures
    assert min(ens_t) < 0.8 < 1.25 < max(ens_t)  # widened past the last run's chosen T (0.8, its lower edge)
    assert cfg.student.sweep.scheduler == "fifo"  # every seed trains to its last epoch


def test_fer2013_gpu_profile_is_the_team_configuration():
    cfg = load_pipeline_config(CONFIG_DIR / "fer2013_gpu.yaml")
    assert cfg.data.preprocess.size == (48, 48) and cfg.data.preprocess.channels == 1  # packed; resized on the GPU
    assert [t.train.model.name for t in cfg.teachers.teachers] == ["resnet18", "efficientnet_b3"]
    assert cfg.student.train.model.name == "mobilenetv3_large_100"
    models = [t.train.model for t in cfg.teachers.teachers] + [cfg.student.train.model]
    assert {m.img_size for m in models} == {112} and all(m.pretrained_path is None for m in models)  # from scratch
    assert all(t.train.device == "cuda" for t in cfg.teachers.teachers)
    assert cfg.student.distill.mode == "online"
    assert 0 < cfg.teachers.resources.gpu < 1 and cfg.student.resources.gpu == cfg.student.sweep.resources.gpu == 0.25


def test_unknown_sweep_variant_is_refused_with_the_grid():
    cfg = load_pipeline_config(CONFIG_DIR / "fer2013_cpu.yaml")
    bad = SweepSection(strategies=["pairwise"], losses=["ce", "kd"], variants=["ce", "fused-kd"])
    with pytest.raises(ConfigError, match=r"fused-kd.*pairwise-kd"):
        sweep_variants(cfg.student.distill, bad)


def test_sweep_modes_run_each_distilled_variant_offline_and_online_under_its_own_family():
    cfg = load_pipeline_config(CONFIG_DIR / "fer2013_cpu.yaml")
    both = SweepSection(strategies=["pairwise"], losses=["ce", "kd"], modes=["offline", "online"])
    variants = sweep_variants(cfg.student.distill, both)
    assert [variant_kind(v) for v in variants] == ["ce", "pairwise-kd", "pairwise-kd-online"]
    assert [v["dcfg"]["mode"] for v in variants[1:]] == ["offline", "online"]
    # no modes: the student's own mode, and the family names the mode only when it is online
    online = cfg.student.distill.model_copy(update={"mode": "online"})
    assert [variant_kind(v) for v in sweep_variants(online, SweepSection(losses=["kd"]))] == ["pairwise-kd-online"]
    assert cfg.student.distill.family == "pairwise-kd" and online.family == "pairwise-kd-online"
