"""HE-aware pruning groups (docs/pruning.md, "Pruning groups") and their group-Lasso penalties.

The groups of a conv depend on its c_n, which depends on the HE parameters and on the
layer's input resolution: they come from the engine's own plan of the model
(`heconv.frontend.conv_packings`) and the engine's group indices
(`heconv.geometry.group_ids`), never from a copy.

- diagonal group (bo, d): all weights sharing one output rotation by d*P slots;
- positional group (bi, pos): all weights sharing one input rotation by sigma(pos);
- plaintext (bo, bi, d, pos): the c_n weights of one plaintext M (Hunter's unit).

Under a baby-step/giant-step schedule with baby step B (docs/design.md, "Rotation schedules") the
rotation groups follow the schedule (`heconv.geometry.schedule_group_ids`): the
"diagonal" slot holds the giant-step groups (bo, g), the "positional" slot the
baby-step groups (bi, j, pos); B = 1 gives the groups above. The schedule is fixed
before training ("auto" depends on the very weights being pruned, so it is refused).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from heconv.algorithms import get_algorithm
from heconv.errors import InputError
from heconv.frontend import conv_packings
from heconv.frontend.lower import conv_plans
from heconv.geometry import group_ids, schedule_group_ids
from heconv.params import CKKSParams
from heconv.schedule import resolve_schedule


@dataclass
class LayerGroups:
    """Group ids of every weight of one conv, as flat index tensors over weight.flatten().

    diag_ids / pos_ids: the giant-step / baby-step groups of baby step `baby_step`
    (B = 1: the diagonal / positional groups).
    """

    path: str
    c_n: int
    shape: tuple[int, int, int, int]
    diag_ids: torch.Tensor  # [C_out*C_in*k*k] -> 0 .. n_diag-1
    pos_ids: torch.Tensor
    plain_ids: torch.Tensor
    n_diag: int
    n_pos: int
    n_plain: int
    diag_saves: torch.Tensor  # [n_diag] 1 where zeroing the group saves a rotation (d != 0; under B: g != 0)
    pos_saves: torch.Tensor  # [n_pos] 1 where it does (pos != centre; under B: (j, pos) != (0, centre))
    baby_step: int = 1
    # an algorithm's own groups (ConvAlgorithm.group_ids), when asked for: kind -> (ids, count)
    extra: dict[str, tuple[torch.Tensor, int]] = field(default_factory=dict)

    @property
    def block_ids(self) -> torch.Tensor | None:
        """The coefficient algorithm's kernel blocks (output group, input chunk), when asked for."""
        return self.extra["block"][0] if "block" in self.extra else None

    @property
    def n_block(self) -> int:
        return self.extra["block"][1] if "block" in self.extra else 0


def groups_for_weight(shape: tuple[int, int, int, int], c_n: int, path: str = "conv",
                      baby_step: int = 1) -> LayerGroups:
    """Group ids of a [C_out, C_in, k, k] weight packed with c_n channels per ciphertext,
    under baby step B (giant-step groups in diag_*, baby-step groups in pos_*).

    >>> g = groups_for_weight((4, 4, 3, 3), c_n=4)
    >>> g.n_diag, g.n_pos, g.n_plain
    (4, 9, 36)
    >>> g = groups_for_weight((4, 4, 3, 3), c_n=4, baby_step=2)   # (bo, g): 2; (bi, j, pos): 18
    >>> g.n_diag, g.n_pos, g.diag_saves.tolist()
    (2, 18, [0.0, 1.0])
    """
    sg = schedule_group_ids(shape, c_n, baby_step)
    diag, posid, plain = sg.giant, sg.baby, group_ids(shape, c_n).plaintext
    # Renumber densely so that every id names a group that has weights.
    out = []
    for ids in (diag, posid, plain):
        uniq, dense = np.unique(ids.ravel(), return_inverse=True)
        out.append((uniq, torch.from_numpy(dense.astype(np.int64))))
    (du, di), (pu, pi), (lu, li) = out
    return LayerGroups(
        path=path, c_n=c_n, shape=tuple(shape),
        diag_ids=di, pos_ids=pi, plain_ids=li, n_diag=len(du), n_pos=len(pu), n_plain=len(lu),
        diag_saves=torch.from_numpy(sg.giant_saves(du).astype(np.float32)),
        pos_saves=torch.from_numpy(sg.baby_saves(pu).astype(np.float32)),
        baby_step=baby_step,
    )


def model_groups(model: nn.Module, input_shape: tuple[int, int, int], params: CKKSParams,
                 schedule: str | dict[str, str | int] | None = None,
                 algorithm: str | None = None) -> dict[str, LayerGroups]:
    """The pruning groups of every conv of `model`, from the engine's plan of it.

    `algorithm` (a name in heconv.algorithms, e.g. a method's `algorithm`): also that algorithm's own
    groups under its network plan of the model (`LayerGroups.extra`, from `ConvAlgorithm.group_ids`),
    e.g. the coefficient algorithm's kernel blocks (`block_ids`) that the `coefficient-block` method prunes.

    `schedule`: one schedule for every conv ("output-rotation", "input-rotation",
    "bsgs:B"), or one per conv path (a schedule or a baby step B; convs left out use
    B = 1), e.g. the `schedule` column of `artemis infer --schedule auto` on the dense model.
    """
    was_training = model.training
    model.eval()
    try:
        packings = conv_packings(model, input_shape, params)
        plans = conv_plans(model, input_shape, params, algorithm) if algorithm is not None else {}
    finally:
        model.train(was_training)
    per_layer = schedule if isinstance(schedule, dict) else {}
    unknown = sorted(set(per_layer) - set(packings))
    if unknown:
        raise InputError(f"schedule names layers that are not convs of the model: {unknown[:5]}; "
                         f"convs: {list(packings)[:5]}...")
    modules = dict(model.named_modules())
    out = {}
    for path, p in packings.items():
        spec = per_layer.get(path, "output-rotation") if isinstance(schedule, dict) else (schedule or "output-rotation")
        out[path] = groups_for_weight(tuple(modules[path].weight.shape), p.c_n, path, _baby_step(spec, p.c_n, path))
        if path in plans:
            own = get_algorithm(algorithm).group_ids(plans[path], tuple(modules[path].weight.shape))
            out[path].extra = {kind: (torch.from_numpy(np.ascontiguousarray(g.ids).reshape(-1).astype(np.int64)),
                                      g.count) for kind, g in own.items()}
    return out


def model_schedules(model: nn.Module, input_shape: tuple[int, int, int], params: CKKSParams,
                    schedule: str = "auto") -> dict[str, str]:
    """The schedule each conv of `model` runs with (e.g. "auto" on the dense model), by path:
    what `model_groups` and `he_cost` take to fix the schedule before training."""
    from heconv.frontend import lower_model
    from heconv.network import ServerConv, plan_network

    was_training = model.training
    model.eval()
    try:
        plan = plan_network(lower_model(model, input_shape), params, schedule=schedule)
    finally:
        model.train(was_training)
    return {a.name: a.plan.schedule_name for a in plan.actions if isinstance(a, ServerConv)}


def _baby_step(spec: str | int, c_n: int, path: str) -> int:
    """The baby step a fixed schedule names for one conv; 'auto' is refused."""
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        spec = f"bsgs:{int(spec)}"
    if spec == "auto":
        raise ValueError(f"layer {path}: pruning groups need a fixed schedule, not 'auto' (which depends on the "
                         f"weights being pruned); pass the dense model's per-layer choice instead")
    return resolve_schedule(spec, c_n, path)


def group_norms(weight: torch.Tensor, ids: torch.Tensor, n: int) -> torch.Tensor:
    """L2 norm of every group: sqrt(sum of squares of its weights), differentiable.

    >>> w = torch.tensor([3.0, 4.0, 1.0])
    >>> group_norms(w, torch.tensor([0, 0, 1]), 2).tolist()
    [5.0, 1.0]
    """
    sq = torch.zeros(n, dtype=weight.dtype, device=weight.device).index_add_(
        0, ids.to(weight.device), weight.reshape(-1) ** 2)
    # The epsilon keeps the gradient finite at an all-zero group.
    return torch.sqrt(sq + 1e-16)


def group_lasso(model: nn.Module, groups: dict[str, LayerGroups], lambda_p: float = 0.0, lambda_d: float = 0.0,
                rotation_weighted: bool = False) -> torch.Tensor:
    """lambda_p * sum ||W_g^pos||_2 + lambda_d * sum ||W_g^diag||_2 over all convs, vectorised per layer.

    With `rotation_weighted`, groups whose removal saves no rotation (d = 0, the centre
    position) are left out: they only cost multiplications.
    """
    modules = dict(model.named_modules())
    total = torch.zeros(())
    for path, g in groups.items():
        w = modules[path].weight
        if lambda_d:
            n = group_norms(w, g.diag_ids, g.n_diag)
            total = total + lambda_d * (n * g.diag_saves.to(n.device) if rotation_weighted else n).sum()
        if lambda_p:
            n = group_norms(w, g.pos_ids, g.n_pos)
            total = total + lambda_p * (n * g.pos_saves.to(n.device) if rotation_weighted else n).sum()
    return total
