"""A bundle replaces nothing but an empty folder or an earlier bundle: someone's files are never deleted."""

from __future__ import annotations

import pytest

from fer_core.errors import ConfigError
from fer_core.export import write_bundle
from fer_core.export.bundle import MANIFEST, check_replaceable, verify_bundle

from .helpers import SPEC, calibration_dict, make_bundle


def _rewrite(bundle, dest, temperature=2.0):
    return write_bundle(dest, bundle.parent / "bundle.onnx", calibration_dict(temperature), SPEC, "# card\n",
                        overwrite=True)  # fmt: skip


def test_overwrite_refuses_a_folder_of_someone_elses_files(tmp_path):
    bundle = make_bundle(tmp_path)
    mine = tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(ConfigError, match=r"mine is not a ferflow bundle \(it holds sub, thesis.tex\)"):
        _rewrite(bundle, mine)
    assert (mine / "thesis.tex").read_text() == "years of work" and (mine / "sub").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "bundle.onnx", "mine"]  # no temp folder left


def test_a_bundle_with_a_foreign_file_added_is_not_replaced(tmp_path):
    bundle = make_bundle(tmp_path)
    (bundle / "notes.md").write_text("mine")
    with pytest.raises(ConfigError, match="notes.md"):
        _rewrite(bundle, bundle)
    assert (bundle / "notes.md").read_text() == "mine"


def test_a_manifest_alone_does_not_make_a_folder_a_bundle(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / MANIFEST).write_text('{"files": {}}')
    with pytest.raises(ConfigError, match="no bundle manifest"):
        check_replaceable(tmp_path / "d", "--out")


def test_an_earlier_bundle_is_replaced_and_a_fixed_side_name_is_left_alone(tmp_path):
    bundle = make_bundle(tmp_path)
    side = tmp_path / ".bundle.old"  # the name the swap once used for the old bundle (and deleted)
    side.mkdir()
    (side / "keep.txt").write_text("x")
    _rewrite(bundle, bundle, temperature=3.0)
    verify_bundle(bundle)
    assert '"temperature": 3.0' in (bundle / "calibration.json").read_text()
    assert (side / "keep.txt").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".bundle.old", "bundle", "bundle.onnx"]


def test_empty_or_absent_folders_and_files(tmp_path):
    check_replaceable(tmp_path / "new")
    (tmp_path / "empty").mkdir()
    check_replaceable(tmp_path / "empty")
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="is not a folder"):
        check_replaceable(tmp_path / "f", "--out")
