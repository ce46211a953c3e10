"""Loss functions, one module per concept; each registers itself in :data:`fer_core.losses._registry.LOSSES`."""
