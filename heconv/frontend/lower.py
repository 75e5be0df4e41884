"""Lower a trained PyTorch model (eval mode) onto the heconv network IR.

The model is traced with torch.fx; BatchNorm is folded into the conv before it,
Identity/Dropout/flatten vanish, and every other module or function must be one the
engine can run, or the lowering fails naming its path and type.
"""

from __future__ import annotations

import operator

import numpy as np
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..geometry import Packing
from ..network.ir import ActOp, AddOp, ConvOp, LinearOp, Network, PadShortcutOp, PoolOp
from .batchnorm import fold_batchnorm
from .modules import PadShortcut, Square

_ADD = {operator.add, torch.add}
_RELU = {F.relu, torch.relu}
_FLATTEN = {torch.flatten}
SUPPORTED = ("Conv2d (odd k, 'same' padding, stride 1/2), BatchNorm2d after a conv, ReLU, Square, "
             "residual add, PadShortcut, AdaptiveAvgPool2d(1), flatten, Linear, Identity, Dropout")


_LEAVES = (PadShortcut, Square)


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, _LEAVES) or super().is_leaf_module(m, qualname)


def _np(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().to(torch.float64).cpu().numpy()


def _check_conv(path: str, m: nn.Conv2d) -> None:
    k = m.kernel_size
    if k[0] != k[1] or k[0] % 2 == 0:
        raise InputError(f"cannot lower {path} (Conv2d): kernel {k} must be square and odd")
    if m.padding != (k[0] // 2, k[1] // 2) or m.padding_mode != "zeros":
        raise InputError(f"cannot lower {path} (Conv2d): padding {m.padding} ({m.padding_mode}); "
                         f"expected 'same' zero padding {k[0] // 2}")
    if m.dilation != (1, 1) or m.groups != 1:
        raise InputError(f"cannot lower {path} (Conv2d): dilation {m.dilation} / groups {m.groups} unsupported")
    if m.stride[0] != m.stride[1] or m.stride[0] not in (1, 2):
        raise InputError(f"cannot lower {path} (Conv2d): stride {m.stride} must be 1 or 2 in both axes")


def _traced(model: nn.Module) -> tuple[fx.Graph, dict[str, nn.Module], dict[str, int]]:
    """The model's fx graph, its modules by path, and how many nodes read each node."""
    graph = _Tracer().trace(model)
    users: dict[str, int] = {}
    for node in graph.nodes:
        for arg in node.all_input_nodes:
            users[arg.name] = users.get(arg.name, 0) + 1
    return graph, dict(model.named_modules()), users


def conv_batchnorm_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """(conv path, BatchNorm2d path) for every BatchNorm2d that directly follows a conv whose only user it
    is: the pairs `lower_model` folds, where the conv's weight scale is free (BN cancels it).

    >>> m = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.Conv2d(2, 2, 1))
    >>> conv_batchnorm_pairs(m)
    [('0', '1')]
    """
    graph, modules, users = _traced(model)
    pairs = []
    for node in graph.nodes:
        if node.op == "call_module" and isinstance(modules[node.target], nn.BatchNorm2d):
            src = node.args[0]
            if (isinstance(src, fx.Node) and src.op == "call_module" and isinstance(modules[src.target], nn.Conv2d)
                    and users.get(src.name, 0) == 1):
                pairs.append((str(src.target), str(node.target)))
    return pairs


def lower_model(model: nn.Module, input_shape: tuple[int, int, int]) -> Network:
    """The network IR of `model` for inputs of shape [C, H, W]."""
    if model.training:
        raise InputError("lower_model: the model must be in eval mode (call model.eval()): "
                         "BatchNorm folds its running statistics")
    graph, modules, users = _traced(model)

    alias: dict[str, str] = {}

    def name_of(n):
        return alias.get(n.name, n.name)

    ops = []
    convs: dict[str, ConvOp] = {}
    output = None
    for node in graph.nodes:
        if node.op == "placeholder":
            alias[node.name] = "x"
        elif node.op == "output":
            output = name_of(node.args[0])
        elif node.op == "call_module":
            m = modules[node.target]
            path, src = node.target, name_of(node.args[0])
            if isinstance(m, nn.Conv2d):
                _check_conv(path, m)
                op = ConvOp(path, src, node.name, _np(m.weight), _np(m.bias), m.stride[0])
                ops.append(op)
                convs[node.name] = op
            elif isinstance(m, nn.BatchNorm2d):
                conv = convs.get(node.args[0].name)
                if conv is None or users.get(node.args[0].name, 0) != 1:
                    raise InputError(f"cannot lower {path} (BatchNorm2d): it must directly follow a conv "
                                     "whose only user it is")
                conv.weight, conv.bias = fold_batchnorm(conv.weight, conv.bias, _np(m.weight), _np(m.bias),
                                                        _np(m.running_mean), _np(m.running_var), m.eps)
                alias[node.name] = conv.out
            elif isinstance(m, nn.ReLU):
                ops.append(ActOp(path, src, node.name, "relu"))
            elif isinstance(m, Square):
                ops.append(ActOp(path, src, node.name, "square"))
            elif isinstance(m, PadShortcut):
                ops.append(PadShortcutOp(path, src, node.name, m.stride, m.c_out))
            elif isinstance(m, nn.AdaptiveAvgPool2d):
                size = m.output_size if isinstance(m.output_size, tuple) else (m.output_size, m.output_size)
                if tuple(size) != (1, 1):
                    raise InputError(f"cannot lower {path} (AdaptiveAvgPool2d): only global pooling (output 1) "
                                     "is supported")
                ops.append(PoolOp(path, src, node.name))
            elif isinstance(m, nn.Linear):
                ops.append(LinearOp(path, src, node.name, _np(m.weight), _np(m.bias)))
            elif isinstance(m, (nn.Identity, nn.Dropout, nn.Flatten)):
                alias[node.name] = src
            else:
                raise InputError(f"cannot lower module {path!r} of type {type(m).__name__}; supported: {SUPPORTED}")
        elif node.op == "call_function":
            if node.target in _ADD:
                ops.append(AddOp(f"add:{node.name}", name_of(node.args[0]), name_of(node.args[1]), node.name))
            elif node.target in _RELU:
                ops.append(ActOp(f"relu:{node.name}", name_of(node.args[0]), node.name, "relu"))
            elif node.target in _FLATTEN:
                alias[node.name] = name_of(node.args[0])
            else:
                raise InputError(f"cannot lower function {getattr(node.target, '__name__', node.target)} "
                                 f"at {node.name}; supported: {SUPPORTED}")
        elif node.op == "call_method" and node.target in ("flatten", "view", "reshape"):
            alias[node.name] = name_of(node.args[0])
        elif node.op == "call_method" and node.target == "add":
            ops.append(AddOp(f"add:{node.name}", name_of(node.args[0]), name_of(node.args[1]), node.name))
        else:
            raise InputError(f"cannot lower {node.op} {node.target!r} at {node.name}; supported: {SUPPORTED}")
    return Network(tuple(input_shape), ops, output)


def conv_packings(model: nn.Module, input_shape: tuple[int, int, int], params) -> dict[str, Packing]:
    """The packing each conv of `model` runs with, keyed by module path.

    This is the geometry the pruning groups must use: c_n depends on the layer's input
    resolution and on the HE parameters, and only the engine's plan knows both.
    """
    from ..network import ServerConv, plan_network

    plan = plan_network(lower_model(model, input_shape), params)
    return {a.name: a.plan.packing for a in plan.actions if isinstance(a, ServerConv)}


def conv_plans(model: nn.Module, input_shape: tuple[int, int, int], params, algorithm: str) -> dict:
    """The plan each conv of `model` runs with under the registered `algorithm` (heconv.algorithms), keyed
    by module path: the geometry of that algorithm's pruning groups (`ConvAlgorithm.group_ids`), with the
    frame and alignment the network planner gives convs whose outputs a residual add sums."""
    from ..network import ServerConv, plan_network

    plan = plan_network(lower_model(model, input_shape), params, algorithm=algorithm)
    return {a.name: a.plan for a in plan.actions if isinstance(a, ServerConv)}

