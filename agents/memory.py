"""Memory cores: the part of a policy that carries information across steps (DESIGN.md contract 2).

Every core has one sequence interface, used by the rollout with ``T = 1`` and by the update on
stored sequences:

- ``initial_state(batch) -> state``: a tuple of tensors, each ``[..., batch, ...]`` with the batch
  on axis 1 (``()`` for a feed-forward core);
- ``forward(x, state, episode_start) -> (y, state)`` with ``x`` ``[T, B, input_size]``,
  ``episode_start`` ``[T, B]`` bool and ``y`` ``[T, B, output_size]``; the state is reset to its
  initial value wherever ``episode_start`` is true, inside the sequence too.

A new core subclasses :class:`MemoryCore` and is added to :data:`CORES`; nothing else changes.
"""

from __future__ import annotations

import torch
from torch import nn

State = tuple[torch.Tensor, ...]


class MemoryCore(nn.Module):
    """Base class of the cores.

    ``recurrent`` is false for cores whose output at step t depends on ``x_t`` only.
    """

    recurrent: bool = False

    def __init__(self, input_size: int, output_size: int):
        super().__init__()
        self.input_size = input_size
        self.output_size = output_size

    def initial_state(self, batch: int, device: torch.device | None = None) -> State:
        return ()

    def forward(
        self, x: torch.Tensor, state: State, episode_start: torch.Tensor
    ) -> tuple[torch.Tensor, State]:
        raise NotImplementedError


class MLPCore(MemoryCore):
    """Feed-forward core: ``y_t = act(W_n ... act(W_1 x_t))``; the state is empty and ignored.

    Args:
        input_size: Features per step.
        hidden_size: Width of every layer (and the output size).
        num_layers: Number of ``Linear -> activation`` layers; 0 makes the core the identity.
        activation: ``"tanh"`` or ``"relu"``.

    Shapes:
        ``x`` ``[T, B, input_size]`` -> ``y`` ``[T, B, hidden_size]`` (``input_size`` if 0 layers).
    """

    def __init__(
        self, input_size: int, hidden_size: int = 64, num_layers: int = 1, activation: str = "tanh"
    ):
        super().__init__(input_size, hidden_size if num_layers > 0 else input_size)
        layers: list[nn.Module] = []
        width = input_size
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden_size), _activation(activation)]
            width = hidden_size
        self.net = nn.Sequential(*layers)

    def forward(
        self, x: torch.Tensor, state: State, episode_start: torch.Tensor
    ) -> tuple[torch.Tensor, State]:
        return self.net(x), state


def _activation(name: str) -> nn.Module:
    activations = {"tanh": nn.Tanh, "relu": nn.ReLU}
    if name not in activations:
        raise ValueError(f"unknown activation {name!r}: expected one of {sorted(activations)}")
    return activations[name]()


#: Core name -> class. ``--agent NAME`` and ``PPOConfig.core`` choose from these.
CORES: dict[str, type[MemoryCore]] = {"mlp": MLPCore}


def make_core(name: str, input_size: int, hidden_size: int, **kwargs) -> MemoryCore:
    """Build the core called ``name`` (a key of :data:`CORES`)."""
    if name not in CORES:
        raise ValueError(f"unknown memory core {name!r}: expected one of {sorted(CORES)}")
    return CORES[name](input_size, hidden_size, **kwargs)
