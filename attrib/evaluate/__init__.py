"""Evaluation of attributions: similarity metrics (and, later, DiffROAR and sanity checks)."""
