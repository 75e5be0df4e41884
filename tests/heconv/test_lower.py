import numpy as np
import pytest
import torch
from torch import nn

import models
from heconv.frontend import lower_model
from heconv.network import ConvOp, LinearOp


def test_unsupported_module_names_path_and_type():
    m = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1),
                      nn.Flatten(), nn.Linear(4, 2)).eval()
    with pytest.raises(ValueError, match=r"cannot lower module '2' of type MaxPool2d"):
        lower_model(m, (3, 8, 8))


def test_unsupported_function_and_conv_options():
    class Sig(nn.Module):
        def forward(self, x):
            return torch.sigmoid(x)

    with pytest.raises(ValueError, match="cannot lower function sigmoid"):
        lower_model(Sig().eval(), (3, 8, 8))
    dil = nn.Sequential(nn.Conv2d(3, 4, 3, padding=2, dilation=2)).eval()
    with pytest.raises(ValueError, match=r"cannot lower 0 \(Conv2d\)"):
        lower_model(dil, (3, 8, 8))
    even = nn.Sequential(nn.Conv2d(3, 4, 2)).eval()
    with pytest.raises(ValueError, match=r"kernel \(2, 2\) must be square and odd"):
        lower_model(even, (3, 8, 8))


def test_training_mode_refused():
    with pytest.raises(ValueError, match="eval mode"):
        lower_model(models.resnet20(), (3, 16, 16))


def test_batchnorm_folded_and_structure():
    m = models.resnet18().eval()
    net = lower_model(m, (3, 32, 32))
    convs = [op for op in net.ops if isinstance(op, ConvOp)]
    assert len(convs) == sum(isinstance(x, nn.Conv2d) for x in m.modules()) == 20
    assert all(op.bias is not None for op in convs)  # BN shift folded into a bias
    assert isinstance(net.ops[-1], LinearOp) and net.output == net.ops[-1].out
    # Folding uses the running statistics: W' = W * gamma / sqrt(var + eps).
    bn = m.bn1
    factor = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().double().numpy()
    expect = m.conv1.weight.detach().double().numpy() * factor[:, None, None, None]
    np.testing.assert_allclose(convs[0].weight, expect)
