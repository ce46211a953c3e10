"""Base class of every narrow, typed config (pydantic v2, ``extra="forbid"``, frozen) and the YAML loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from fer_core.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class FrozenModel(BaseModel):
    """Strict, immutable config model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def set_off_default(self, name: str) -> bool:
        """Whether field ``name`` was given with a value other than its default. A dump carries every default, so a
        conflict check that reads this (not ``model_fields_set`` alone) lets a dumped config validate again."""
        return name in self.model_fields_set and getattr(self, name) != type(self).model_fields[name].default


def load_yaml_config(path: str | Path, model: type[M]) -> M:
    """Load a YAML file with ``safe_load`` and validate it as ``model``.

    Raises:
        ConfigError: the file is missing, empty, not UTF-8 YAML, not a mapping, or fails validation (message names
            the file and fields).
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    try:
        data: Any = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {p} is not valid UTF-8 YAML: {e}; fix the file") from e
    if data is None:  # an empty file, or only comments: "got NoneType" would hide that
        raise ConfigError(f"config file {p} is empty; write the {model.__name__} fields (see configs/)")
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping at the top level, got {type(data).__name__}")
    return validate_config(data, model, where=str(p))


def validate_config(data: dict[str, Any], model: type[M], where: str = "config") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"invalid {model.__name__} in {where}:\n{e}") from e
