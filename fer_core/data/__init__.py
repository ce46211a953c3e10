"""Data: source adapters, validation, provenance, splits, augmentation, the index and the training dataset."""
