"""ferflow's pure library: data, models, losses, training, calibration, export and the realtime runner.

Never imports prefect, ray, mlflow, boto3, ``flows`` or ``tasks`` (enforced by ``tests/core/test_layers.py``).
"""

from fer_core.errors import (
    CheckpointMismatchError,
    ConfigError,
    DataIntegrityError,
    FerError,
    GateFailedError,
)
from fer_core.taxonomy import FER_CLASSES, MINORITY_CLASSES

__version__ = "0.1.0"

__all__ = [
    "FER_CLASSES",
    "MINORITY_CLASSES",
    "CheckpointMismatchError",
    "ConfigError",
    "DataIntegrityError",
    "FerError",
    "GateFailedError",
    "__version__",
]
