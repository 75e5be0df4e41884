"""Pruning: HE-aware group Lasso training and pruning (issue 4; not built yet)."""
