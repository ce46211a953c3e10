"""Schemas ferflow's layers share: the pipeline profile, the typed stage results and the runtime settings."""
