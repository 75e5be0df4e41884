import pytest
import torch

import models


@pytest.mark.parametrize("name", models.MODELS)
@pytest.mark.parametrize("in_channels, size", [(3, 16), (1, 28), (3, 32)])
def test_models_take_any_input_size(name, in_channels, size):
    m = models.build_model(name, in_channels, 7).eval()
    with torch.no_grad():
        assert m(torch.randn(2, in_channels, size, size)).shape == (2, 7)


def test_resnet18_at_64():
    with torch.no_grad():
        assert models.resnet18(3, 200).eval()(torch.randn(1, 3, 64, 64)).shape == (1, 200)


def test_parameter_counts_match_the_literature():
    def count(m):
        return sum(p.numel() for p in m.parameters())

    assert 265_000 < count(models.resnet20()) < 275_000  # He et al.: 0.27M (option-A shortcuts)
    assert 11_100_000 < count(models.resnet18()) < 11_200_000
    assert 23_400_000 < count(models.resnet50()) < 23_600_000


def test_bad_arguments():
    with pytest.raises(ValueError, match="in_channels must be 1 or 3"):
        models.resnet18(in_channels=2)
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        models.build_model("vgg")
    with pytest.raises(ValueError, match="activation must be"):
        models.SmallCNN(activation="tanh")
