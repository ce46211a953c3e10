"""The ingest report says why split shares differ from the asked fractions (group-wise splits), hand-checked."""

import pandas as pd

from fer_core.data.report import split_shares


def _index(groups: dict[str, tuple[str, int]]) -> pd.DataFrame:
    rows = [{"split": sp, "group_id": g} for g, (sp, n) in groups.items() for _ in range(n)]
    return pd.DataFrame(rows)


def test_a_large_group_moving_a_share_is_explained():
    # 20 rows: 10 singletons in train, one group of 6 in val, 4 singletons in test -> 50/30/20 against 70/15/15
    groups = {f"t{i}": ("train", 1) for i in range(10)} | {"big": ("val", 6)} | {f"s{i}": ("test", 1) for i in range(4)}
    index = _index(groups)
    out = split_shares(index, pd.DataFrame({"split_hint": [None] * len(index)}), (0.7, 0.15, 0.15))
    assert out["got"] == {"train": 0.5, "val": 0.3, "test": 0.2}
    assert out["largest_groups"][0] == {"split": "val", "group_id": "big", "rows": 6}
    assert "asked 70%/15%/15%, got 50%/30%/20%" in out["note"] and "6 rows of 20" in out["note"]


def test_shares_within_tolerance_need_no_note_and_hinted_sources_do_not_apply():
    groups = {f"t{i}": ("train", 1) for i in range(14)} | {f"v{i}": ("val", 1) for i in range(3)}
    index = _index(groups | {f"s{i}": ("test", 1) for i in range(3)})
    assert split_shares(index, pd.DataFrame({"split_hint": [None]}), (0.7, 0.15, 0.15))["note"] == ""
    assert split_shares(index, pd.DataFrame({"split_hint": ["train"]}), (0.7, 0.15, 0.15)) == {}
