"""Multi-teacher strategies; importing this package registers every strategy in :data:`STRATEGIES`."""

from fer_core.distill.strategies import four_way, fused, pairwise, single, split  # noqa: F401  (registration)
from fer_core.distill.strategies._base import STRATEGIES, TeacherStrategy, fuse_teachers

__all__ = ["STRATEGIES", "TeacherStrategy", "fuse_teachers"]
