"""The experiment machinery of the application layer: sweep cells (train, prune), the SQLite
experiments store and the Ray sweep that fills it. pruning/ computes; this package writes."""
