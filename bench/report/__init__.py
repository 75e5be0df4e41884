"""The cost-model report behind `artemis report`: benchmark runs read into cases (cases.py), the
count models fitted per N (fits.py), the pruning methods compared (compare.py), ours beside a
peer engine (peers.py), the figures (plots.py), the opening verdicts (verdict.py), report.md
and `write_report` (markdown.py), and the README's results block (readme.py).

Outputs of `write_report`: report.md, report.csv (one tidy row a case), cost_model.json,
latency_fits_N<N>.png, sweeps.png and pareto.png.
"""

from .cases import CSV_COLUMNS, Case, default_benchmark_files, load_benchmarks, run_suite, tidy_table
from .compare import method_ratios
from .fits import Fit, fit_full, fit_rotation_only, rotation_share
from .markdown import write_report
from .readme import README_BEGIN, README_END, read_readme_block, render_readme_block, update_readme

__all__ = [
    "CSV_COLUMNS", "Case", "Fit", "README_BEGIN", "README_END", "default_benchmark_files", "fit_full",
    "fit_rotation_only", "load_benchmarks", "method_ratios", "read_readme_block", "render_readme_block",
    "rotation_share", "run_suite", "tidy_table", "update_readme", "write_report",
]
