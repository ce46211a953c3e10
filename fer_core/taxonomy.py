"""The canonical 7-class FER taxonomy and the one explicit synonym table every adapter maps through."""

from __future__ import annotations

from fer_core.errors import DataIntegrityError

FER_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
MINORITY_CLASSES: tuple[str, ...] = ("disgust", "fear", "sad")
CLASS_TO_INDEX: dict[str, int] = {c: i for i, c in enumerate(FER_CLASSES)}

# Every spelling seen in public FER datasets' folder names and label files, lower-cased.
SYNONYMS: dict[str, str] = {
    "angry": "angry", "anger": "angry", "mad": "angry",
    "disgust": "disgust", "disgusted": "disgust", "disgusting": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear",
    "happy": "happy", "happiness": "happy", "joy": "happy", "smile": "happy",
    "neutral": "neutral", "calm": "neutral",
    "sad": "sad", "sadness": "sad", "unhappy": "sad",
    "surprise": "surprise", "surprised": "surprise", "suprise": "surprise",
}  # fmt: skip


def canonical_label(name: str, where: str = "") -> str:
    """Map a label spelling to the canonical class name.

    Args:
        name: a class name in any casing or a known synonym (``Anger``, ``happiness``).
        where: file/row shown in the error message.

    Returns:
        One of :data:`FER_CLASSES`.

    Raises:
        DataIntegrityError: the name is not a known spelling of a canonical class.
    """
    key = name.strip().lower()
    if key not in SYNONYMS:
        raise DataIntegrityError(
            f"unknown label {name!r}{' at ' + where if where else ''}; "
            f"allowed: {sorted(SYNONYMS)} (canonical: {list(FER_CLASSES)})",
            [(where or "label", f"unknown label {name!r}")],
        )
    return SYNONYMS[key]
