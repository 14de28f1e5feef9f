"""HTML reports rendered from run directories (never recomputing anything)."""
