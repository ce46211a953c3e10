"""Adapters to the outside systems: MLflow, Ray and Tune, the artifact store, caches and the dataset cache."""
