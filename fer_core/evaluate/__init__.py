"""Evaluation: classification metrics and statistics over seeds."""
