"""What a pruned model costs on the engine, per conv: returns data, writes nothing."""

from __future__ import annotations

from torch import nn

from heconv.frontend import lower_model
from heconv.network import ServerConv, plan_network
from heconv.params import CKKSParams

from .masks import fold_masks


def he_cost(model: nn.Module, input_shape: tuple[int, int, int], params: CKKSParams,
            schedule: str | dict[str, str] = "output-rotation", algorithm: str = "slot") -> dict[str, int]:
    """Predicted rotations and plaintext multiplications of the (mask-folded) model on the engine,
    every conv with `schedule` (or one per conv name, heconv.network.plan_network) and `algorithm`."""
    folded = fold_masks(model).eval()
    plan = plan_network(lower_model(folded, input_shape), params, schedule=schedule, algorithm=algorithm)
    return {"rotations": plan.predicted.rotations, "pmuls": plan.predicted.pmuls}


def layer_summary(model: nn.Module, input_shape: tuple[int, int, int], params: CKKSParams,
                  schedule: str | dict[str, str] = "output-rotation") -> dict:
    """Per conv: kept positions and diagonals, schedule, predicted rotations and multiplications, sparsity."""
    folded = fold_masks(model).eval()
    plan = plan_network(lower_model(folded, input_shape), params, schedule=schedule)
    modules = dict(folded.named_modules())
    layers = []
    for a in plan.actions:
        if not isinstance(a, ServerConv):
            continue
        p = a.plan
        w = modules[a.name].weight
        layers.append({
            "layer": a.name, "c_in": p.spec.c_in, "c_out": p.spec.c_out, "kernel": p.spec.kernel,
            "hw": p.spec.height, "c_n": p.packing.c_n, "schedule": p.schedule_name, "baby_step": p.baby_step,
            "kept_positions": p.positions, "kept_diagonals": p.diagonals,
            "kept_diagonal_count": sum(len(d) for d in p.diagonals), "diagonal_count": p.packing.n_out * p.packing.c_n,
            "predicted_rotations": p.predicted.rotations, "predicted_pmuls": p.predicted.pmuls,
            "sparsity": float((w == 0).float().mean()),
        })
    return {"layers": layers, "rotations": plan.predicted.rotations, "pmuls": plan.predicted.pmuls,
            "params": params.to_dict()}
