"""The run store: every on-disk format attrib writes or reads (run.json, per-input arrays, PNGs, DiffROAR job
files and caches), all written atomically; ``load_run`` reads a run folder back."""

from attrib.runs.store import Run, RunError, RunStore, id_key, load_run, run_folder, slug

__all__ = ["Run", "RunError", "RunStore", "id_key", "load_run", "run_folder", "slug"]
