"""Model card: readable metric and count tables, calibration notes, and the excerpt used as a registry description."""

from fer_core.export.model_card import card_excerpt, render_model_card
from fer_core.preprocess import PreprocessSpec
from fer_core.taxonomy import FER_CLASSES

CAL = {
    "classes": list(FER_CLASSES),
    "temperature": 1.0,
    "metrics": {"before": {"accuracy": 0.5, "ece_15": 0.0125}, "after": {"accuracy": 0.5, "ece_15": 0.0125}},
}


def card() -> str:
    return render_model_card(
        "fer-student",
        {"index_sha256": "ab" * 32, "counts": {"train": {"happy": 3, "sad": 2}, "val": {"happy": 1}}},
        {"held-out macro-F1": 0.41234, "promotion": "not promoted"},
        CAL,
        PreprocessSpec(),
        calibration_notes=["temperature scaling made validation ECE worse, so T falls back to 1"],
        lineage={"mlflow_run": "r1"},
    )


def test_card_tables_are_read_as_tables():
    text = card()
    assert "| held-out macro-F1 | 0.4123 |" in text and "| promotion | not promoted |" in text
    assert "| split | happy | sad | total |" in text
    assert "| train | 3 | 2 | 5 |" in text and "| val | 1 | 0 | 1 |" in text
    assert "| ece_15 | 0.0125 | 0.0125 |" in text  # before/after on the held-out split
    assert "> **Note:** temperature scaling made validation ECE worse" in text
    assert text.index("## Metrics") < text.index("## Limits") < text.index("## Lineage")


def test_excerpt_keeps_whole_sections_and_says_where_the_rest_is():
    text = card()
    assert card_excerpt(text, len(text)) == text
    short = card_excerpt(text, text.index("## Data") + 100)
    assert len(short) <= text.index("## Data") + 100
    assert "## Limits" in short and "## Data" not in short and "model_card.md" in short
