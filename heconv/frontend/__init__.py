"""From PyTorch to the engine: torch.fx lowering, BatchNorm folding, the lowerable modules."""

from .batchnorm import fold_batchnorm
from .lower import conv_batchnorm_pairs, conv_packings, conv_plans, lower_model
from .modules import PadShortcut, Square

__all__ = ["fold_batchnorm", "conv_batchnorm_pairs", "conv_packings", "conv_plans", "lower_model", "PadShortcut",
           "Square"]
