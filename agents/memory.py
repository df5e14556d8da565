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


def reset_state(state: State, episode_start: torch.Tensor) -> State:
    """Zero the state of the copies where ``episode_start`` ([B] bool) is true."""
    keep = (~episode_start).to(state[0].dtype).view(1, -1, *([1] * (state[0].dim() - 2)))
    return tuple(s * keep for s in state)


class RecurrentCore(MemoryCore):
    """LSTM or GRU core (Hochreiter & Schmidhuber, 1997; Cho et al., 2014) with episode resets.

    The state is reset to zeros wherever ``episode_start`` is true. A sequence without episode
    starts after its first step runs as one ``nn.LSTM``/``nn.GRU`` call (cuDNN on a GPU). A
    sequence with starts inside is cut at them: every piece becomes a sequence of its own in one
    packed batch, starting from the stored state (first piece) or from zeros (pieces that begin
    an episode), so the whole minibatch is still one call rather than a Python loop over steps.

    Args:
        input_size: Features per step.
        hidden_size: Size of the hidden state (and the output).
        num_layers: Stacked recurrent layers.
        cell: ``"lstm"`` or ``"gru"``.

    Shapes:
        ``x`` ``[T, B, input_size]`` -> ``y`` ``[T, B, hidden_size]``; state: LSTM ``(h, c)``,
        GRU ``(h,)``, each ``[num_layers, B, hidden_size]``.
    """

    recurrent = True

    def __init__(self, input_size: int, hidden_size: int = 64, num_layers: int = 1,
                 cell: str = "lstm"):
        super().__init__(input_size, hidden_size)
        if cell not in ("lstm", "gru"):
            raise ValueError(f"unknown recurrent cell {cell!r}: expected 'lstm' or 'gru'")
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        self.cell, self.num_layers, self.hidden_size = cell, num_layers, hidden_size
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(input_size, hidden_size, num_layers)
        for name, param in self.rnn.named_parameters():
            if name.startswith("weight"):
                nn.init.orthogonal_(param)
            else:
                nn.init.zeros_(param)

    def initial_state(self, batch: int, device: torch.device | None = None) -> State:
        zeros = torch.zeros(self.num_layers, batch, self.hidden_size, device=device)
        return (zeros, zeros.clone()) if self.cell == "lstm" else (zeros,)

    def _run(self, x, state: State):
        hidden = state if self.cell == "lstm" else state[0]
        y, hidden = self.rnn(x, hidden)
        return y, (hidden if self.cell == "lstm" else (hidden,))

    def forward(
        self, x: torch.Tensor, state: State, episode_start: torch.Tensor
    ) -> tuple[torch.Tensor, State]:
        state = reset_state(state, episode_start[0])
        if x.shape[0] == 1:
            return self._run(x, state)
        starts_inside = episode_start[1:]
        if not bool(starts_inside.any()):  # one sync per call; the rollout (T = 1) never gets here
            return self._run(x, state)
        return self._forward_pieces(x, state, episode_start)

    def _forward_pieces(
        self, x: torch.Tensor, state: State, episode_start: torch.Tensor
    ) -> tuple[torch.Tensor, State]:
        """Cut the sequences at episode starts and run every piece in one packed call."""
        length, batch = episode_start.shape
        cut = episode_start.t().clone()  # [B, T], copy-major order
        cut[:, 0] = True
        flat_cut = cut.flatten()
        piece = torch.cumsum(flat_cut.long(), 0) - 1  # piece id of every (copy, step)
        piece_start = flat_cut.nonzero().squeeze(1)  # flat index where each piece begins
        num_pieces = piece_start.numel()
        position = torch.arange(flat_cut.numel(), device=x.device) - piece_start[piece]
        lengths = torch.bincount(piece, minlength=num_pieces)
        padded = x.new_zeros(length, num_pieces, x.shape[-1])
        padded[position, piece] = x.transpose(0, 1).reshape(-1, x.shape[-1])
        # A piece continues the stored state only if it is the first of its copy.
        copy_of_piece = piece_start // length
        first = (piece_start % length == 0).to(x.dtype).view(1, -1, 1)
        init = tuple(s[:, copy_of_piece] * first for s in state)
        packed = nn.utils.rnn.pack_padded_sequence(padded, lengths.cpu(), enforce_sorted=False)
        y_packed, hidden = self._run(packed, init)
        y_padded, _ = nn.utils.rnn.pad_packed_sequence(y_packed, total_length=length)
        y = y_padded[position, piece].reshape(batch, length, -1).transpose(0, 1)
        # The final state of each copy is the final state of its last piece.
        last_piece = torch.full((batch,), -1, dtype=torch.long, device=x.device)
        last_piece.scatter_reduce_(0, copy_of_piece, torch.arange(num_pieces, device=x.device),
                                  reduce="amax")
        return y, tuple(h[:, last_piece] for h in hidden)


class LSTMCore(RecurrentCore):
    """:class:`RecurrentCore` with an LSTM cell."""

    def __init__(self, input_size: int, hidden_size: int = 64, num_layers: int = 1):
        super().__init__(input_size, hidden_size, num_layers, cell="lstm")


class GRUCore(RecurrentCore):
    """:class:`RecurrentCore` with a GRU cell."""

    def __init__(self, input_size: int, hidden_size: int = 64, num_layers: int = 1):
        super().__init__(input_size, hidden_size, num_layers, cell="gru")


def _activation(name: str) -> nn.Module:
    activations = {"tanh": nn.Tanh, "relu": nn.ReLU}
    if name not in activations:
        raise ValueError(f"unknown activation {name!r}: expected one of {sorted(activations)}")
    return activations[name]()


#: Core name -> class. ``--agent NAME`` and ``PPOConfig.core`` choose from these.
CORES: dict[str, type[MemoryCore]] = {"mlp": MLPCore, "lstm": LSTMCore, "gru": GRUCore}


def make_core(name: str, input_size: int, hidden_size: int, **kwargs) -> MemoryCore:
    """Build the core called ``name`` (a key of :data:`CORES`)."""
    if name not in CORES:
        raise ValueError(f"unknown memory core {name!r}: expected one of {sorted(CORES)}")
    return CORES[name](input_size, hidden_size, **kwargs)
