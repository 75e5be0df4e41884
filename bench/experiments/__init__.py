"""The experiment machinery of the application layer: sweep cells (train, prune), the SQLite
experiments store and the Ray sweep that fills it. pruning/ computes; this package writes.

cells (what a cell computes), store (the database), db (opening it, checked), grid (a sweep's
grid, checked before its first cell), claims (cells two sweeps share out), cluster (joining
Ray within a bounded time), sweep (running the grid)."""
