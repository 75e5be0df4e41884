"""HE-aware pruning: data sets, the engine's groups, group-Lasso training, pruning methods,
iterative pruning, synthetic sparsity. Returns data; the command line (bench) writes files."""
