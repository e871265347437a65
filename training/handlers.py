"""Subscribers to annotation events (filled in by the training pipeline)."""
