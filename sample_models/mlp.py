"""A plain MLP for MNIST-sized inputs: 784 -> 512 -> 256 -> 10."""

import torch
from torch import nn


def build_model() -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 512),
        nn.ReLU(),
        nn.Linear(512, 256),
        nn.ReLU(),
        nn.Linear(256, 10),
    )


def example_inputs() -> torch.Tensor:
    return torch.randn(32, 1, 28, 28)


def loss_fn(output: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    targets = torch.arange(output.shape[0]) % 10
    return nn.functional.cross_entropy(output, targets)
