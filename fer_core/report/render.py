"""Markdown rendering of the results report (data findings first, then models, students, calibration, latency)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from fer_core.report.results import Evaluation


@dataclass(frozen=True)
class Target:
    """A stated target and what the run reached (``None``: not measured)."""

    name: str
    goal: str
    reached: float | None
    met: bool | None
    fmt: str = "{:.3f}"


@dataclass
class ReportData:
    """Everything :func:`render_markdown` needs; images are paths relative to the report file."""

    title: str
    profile: str
    meta: dict[str, str]
    findings: dict[str, Any]
    split_counts: pd.DataFrame
    test_composition: dict[str, int]
    models: list[tuple[str, str, Evaluation]]
    student_rows: pd.DataFrame
    families: pd.DataFrame
    baseline: str
    packaged_family: str
    champion: dict[str, Any]
    abstention: pd.DataFrame | None
    latency: dict[str, dict[str, float]]
    targets: list[Target]
    images: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    sources: str = "the sources"
    timings: list[tuple[str, int, float]] = field(default_factory=list)
    eval_name: str = "held-out test originals"


def _f(x: Any, fmt: str = "{:.3f}") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return fmt.format(x)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _findings(f: Mapping[str, Any], test_comp: Mapping[str, int]) -> str:
    rows_ = f.get("rows", {})
    dup = f.get("duplicates_of_held_out_dropped", {})
    cop = f.get("derived_copies", {})

    def total(d: Mapping[str, int]) -> str:
        return f"{sum(d.values())}" + (f" ({', '.join(f'{k}: {v}' for k, v in d.items())})" if d else "")

    rows = [
        ("images read", rows_.get("ok", 0) + rows_.get("dropped", 0) + rows_.get("rejected", 0)),
        ("rejected (unreadable, truncated, escaping paths, ...)", rows_.get("rejected", 0)),
        ("exact duplicates (same pixels) dropped", f.get("exact_duplicates", 0)),
        ("  of which with conflicting labels (all copies dropped)", f.get("exact_duplicates_label_conflict", 0)),
        ("near-duplicate images (dHash) kept in one provenance group", f.get("near_duplicate_images", 0)),
        ("  near-duplicate clusters / with mixed labels",
         f"{f.get('near_duplicate_clusters', 0)} / {f.get('near_duplicate_clusters_label_conflict', 0)}"),
        ("training faces dropped as exact duplicates of a held-out face", total(dup.get("exact", {}))),
        ("training faces dropped: their provenance group holds a held-out face (never moved)",
         total(dup.get("near", {}))),
        ("third-party derived copies `<orig>.jpg<N>.jpg`", f.get("augmented_copies", 0)),
        ("  matched to their original / without an original",
         f"{f.get('augmented_copies_matched', 0)} / {f.get('augmented_copies_missing_original', 0)}"),
        ("  dropped from validation/test (originals only there)", cop.get("dropped_from_held_out_splits", "–")),
        (f"  training policy `derived_copies: {cop.get('policy', '?')}`: kept / dropped",
         f"{cop.get('kept_in_train', '–')} / {cop.get('dropped_from_train_by_policy', '–')}"),
        ("blank images", len(f.get("blank_images", []))),
        ("tiny images", f.get("tiny_images", 0)),
    ]  # fmt: skip
    comp = ", ".join(f"{k}: {v}" for k, v in test_comp.items())
    return _table(("finding", "count"), rows) + f"\n\nTest split as indexed: {comp}."


def _model_rows(models: Sequence[tuple[str, str, Evaluation]], subset: str | None) -> list[list[str]]:
    out = []
    for name, role, ev in models:
        b = ev.subsets.get(subset, {}) if subset else ev.before
        a = ev.subsets_after.get(subset, {}) if subset else ev.after
        out.append([name, role, _f(b.get("accuracy")), _f(b.get("macro_f1")), _f(b.get("minority_f1")),
                    _f(b.get("ece_15"), "{:.4f}"), _f(a.get("ece_15"), "{:.4f}"),
                    _f(ev.temperature, "{:.2f}")])  # fmt: skip
    return out


def _mean_std(r: Mapping[str, Any], m: str, fmt: str = "{:.4f}") -> str:
    s = r.get(f"{m}_std")
    return f"{_f(r.get(f'{m}_mean'), fmt)} ± {_f(s, fmt)}"


def _p(r: Mapping[str, Any], m: str) -> str:
    if f"p_{m}" not in r or pd.isna(r.get(f"p_{m}")):
        return "baseline" if "d_" + m not in r or pd.isna(r.get("d_" + m)) else "–"
    lo, hi = r[f"d_{m}_ci"]
    return f"{r[f'd_{m}'] * 100:+.2f} pp [{lo * 100:+.2f}, {hi * 100:+.2f}], p = {r[f'p_{m}']:.3g}"


def render_markdown(d: ReportData) -> str:
    """The report as Markdown (GitHub flavour); every figure is a relative PNG link."""
    img = d.images
    parts = [f"# {d.title}", "", _table(("", ""), list(d.meta.items())), ""]
    if d.timings:
        parts += [_table(("stage", "runs", "minutes (sum of run wall times)"),
                         [(s, n, f"{m:.1f}") for s, n, m in d.timings]), ""]  # fmt: skip
    parts += [f"## 1. Data findings ({d.sources}, as found)", "", _findings(d.findings, d.test_composition), ""]
    parts += [_table(["split", *d.split_counts.columns], [[i, *r] for i, r in zip(d.split_counts.index,
                                                                                   d.split_counts.values.tolist(),
                                                                                   strict=True)]), ""]  # fmt: skip
    if "balance" in img:
        parts += [f"![class balance]({img['balance']})", ""]
    parts += ["## 2. Targets", "", _table(("target", "goal", "reached", "met"), [
        (t.name, t.goal, _f(t.reached, t.fmt), "–" if t.met is None else ("yes" if t.met else "**no**"))
        for t in d.targets]), ""]  # fmt: skip
    hdr = ("model", "role", "accuracy", "macro-F1", "minority-F1", "ECE before", "ECE after T", "T")
    parts += [f"## 3. Teachers and ensemble (last epoch, {d.eval_name})", "",
              _table(hdr, _model_rows(d.models, None)), ""]  # fmt: skip
    parts += [f"## 4. Students: CE vs KD vs DKD vs multi-teacher, across seeds ({d.eval_name})", ""]
    parts += [f"Mean ± std over seeds of the last-epoch metrics. Paired differences against `{d.baseline}` "
              "(same seeds): mean, 95% paired Student-t interval over seeds (n − 1 degrees of freedom; a percentile "
              "bootstrap over 5 seeds covers only ~85 %) and the exact paired permutation test p-value.",
              ""]  # fmt: skip
    rows = []
    for r in d.families.to_dict("records"):
        fam = f"**{r['family']}**" if r["family"] == d.packaged_family else r["family"]
        rows.append([fam, r["n_seeds"], _mean_std(r, "accuracy"), _mean_std(r, "macro_f1"),
                     _mean_std(r, "minority_f1"), _mean_std(r, "ece_15"), _p(r, "macro_f1"),
                     _p(r, "accuracy")])  # fmt: skip
    parts += [_table(("family", "seeds", "accuracy", "macro-F1", "minority-F1", "ECE (raw)",
                      f"Δ macro-F1 vs {d.baseline}", f"Δ accuracy vs {d.baseline}"), rows), ""]  # fmt: skip
    parts += [f"The packaged family is **{d.packaged_family}**.", ""]
    if "families" in img:
        parts += [f"![students per seed]({img['families']})", ""]
    per_seed = d.student_rows.sort_values(["family", "seed"])
    parts += ["<details><summary>Per-seed results</summary>", "", _table(
        ("family", "seed", "accuracy", "macro-F1", "minority-F1", "ECE raw", "ECE after T", "MLflow run"),
        [[r["family"], r["seed"], _f(r["accuracy"]), _f(r["macro_f1"]), _f(r["minority_f1"]), _f(r["ece_15"], "{:.4f}"),
          _f(r["ece_15_after"], "{:.4f}"), f"`{r['run_id'][:12]}`"] for r in per_seed.to_dict("records")]),
        "", "</details>", ""]  # fmt: skip
    parts += [f"## 5. Calibration (global temperature fitted on validation originals, measured on {d.eval_name})",
              ""]  # fmt: skip
    cal = d.student_rows.groupby("family", sort=False)[["ece_15", "ece_15_after", "nll", "nll_after",
                                                        "brier", "brier_after"]].mean()  # fmt: skip
    parts += [_table(("family", "ECE before", "ECE after", "NLL before", "NLL after", "Brier before", "Brier after"),
                     [[f, *(_f(v, "{:.4f}") for v in r)] for f, r in zip(cal.index, cal.values.tolist(), strict=True)]),
              ""]  # fmt: skip
    ch = d.champion
    if ch:
        alias = f"@{ch['alias']}" if ch.get("alias") else "not promoted: it failed the promotion gates"
        parts += [f"Packaged student `{ch.get('name')}` (registry `{ch.get('model')}` v{ch.get('version')} "
                  f"{alias}, MLflow run `{ch.get('run_id', '')[:12]}`), T = {_f(ch.get('temperature'), '{:.3f}')}:",
                  ""]  # fmt: skip
        for key in ("reliability_before", "reliability_after"):
            if key in img:
                parts += [f"![{key}]({img[key]})"]
        parts += [""]
    if d.abstention is not None:
        a = d.abstention
        parts += ["## 6. Abstention (packaged student, thresholds chosen on validation originals for precision "
                  f"≥ 0.75, applied to {d.eval_name})", "",
                  _table(("class", "τ", "precision", "recall", "F1", "coverage", "support", "note"),
                  [[r["class"], _f(r["tau"], "{:.2f}"), _f(r["precision"]), _f(r["recall"]), _f(r["f1"]),
                    _f(r["coverage"]), int(r["support"]), r["note"]] for r in a.to_dict("records")]), ""]  # fmt: skip
    if d.latency:
        parts += ["## 7. Latency of the packaged student (batch 1, this machine)", "", _table(
            ("runtime", "median ms", "p95 ms", "vs torch eager"),
            [[k, _f(v["median_ms"], "{:.2f}"), _f(v["p95_ms"], "{:.2f}"),
              _f(d.latency.get("torch eager", v)["median_ms"] / v["median_ms"], "{:.2f}x")]
             for k, v in d.latency.items()]), ""]  # fmt: skip
    parts += [f"## 8. Confusion matrices ({d.eval_name}, rows = true class, normalised)", ""]
    parts += [f"![{k}]({v})" for k, v in img.items() if k.startswith("confusion")] + [""]
    if d.notes:
        parts += ["## Notes", ""] + [f"- {n}" for n in d.notes] + [""]
    return "\n".join(parts)
