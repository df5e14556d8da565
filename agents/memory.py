"""Memory cores: the part of a policy that carries information across steps.

See docs/architecture.md, "The policy".

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

import math

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
    starts after its first step runs as one ``nn.LSTM``/``nn.GRU`` call (cuDNN on a GPU). On the
    CPU, a sequence with starts inside runs step by step with the fused cell, zeroing the state
    at the starts. On an accelerator it is cut at them instead: every piece becomes a sequence
    of its own in one padded batch, starting from the stored state (first piece) or from zeros
    (pieces that begin an episode), so the whole minibatch is still one call rather than a
    Python loop over steps.
    The final state after such a sequence is computed without gradient (nothing back-propagates
    through it: the rollout, which carries states forward, steps with T = 1).

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
        if x.device.type == "cpu":
            return self._forward_steps(x, state, episode_start)
        return self._forward_pieces(x, state, episode_start)

    def _forward_steps(
        self, x: torch.Tensor, state: State, episode_start: torch.Tensor
    ) -> tuple[torch.Tensor, State]:
        """Step by step with the fused cell (``torch.lstm_cell`` / ``torch.gru_cell``), zeroing
        the state where an episode starts. On the CPU this does exactly ``T * B`` cell steps,
        where the padded pieces of :meth:`_forward_pieces` do ``T`` per piece plus a rerun for the
        final state: about twice as fast forward and backward at an episode start every 20 steps
        (``python -m benchmarks.profile``)."""
        keep = (~episode_start[1:]).to(x.dtype).unsqueeze(-1)  # [T - 1, B, 1]
        weights = [tuple(getattr(self.rnn, f"{name}_l{layer}")
                         for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
                   for layer in range(self.num_layers)]
        hidden = [tuple(s[layer] for s in state) for layer in range(self.num_layers)]
        outputs = []
        # unbind, not x[t]: the backward of T selects would build T zero tensors of x's size.
        for t, y in enumerate(x.unbind(0)):
            for layer, w in enumerate(weights):
                h = hidden[layer] if t == 0 else tuple(s * keep[t - 1] for s in hidden[layer])
                if self.cell == "lstm":
                    h = torch.lstm_cell(y, h, *w)
                else:
                    h = (torch.gru_cell(y, h[0], *w),)
                hidden[layer], y = h, h[0]
            outputs.append(y)
        final = tuple(torch.stack([h[i] for h in hidden]) for i in range(len(state)))
        return torch.stack(outputs), final

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
        # Padding sits after each piece's end, so it never changes a valid output; one padded
        # call is several times faster than a packed one on the CPU (forward and backward).
        y_padded, _ = self._run(padded, init)
        y = y_padded[position, piece].reshape(batch, length, -1).transpose(0, 1)
        # The final state of a copy is that of its last piece after its true length: rerun those
        # pieces packed, without gradient (the update discards it; the rollout uses T = 1).
        last_piece = torch.full((batch,), -1, dtype=torch.long, device=x.device)
        last_piece.scatter_reduce_(0, copy_of_piece, torch.arange(num_pieces, device=x.device),
                                  reduce="amax")
        with torch.no_grad():
            packed = nn.utils.rnn.pack_padded_sequence(
                padded[:, last_piece], lengths[last_piece].cpu(), enforce_sorted=False
            )
            _, final = self._run(packed, tuple(s[:, last_piece] for s in init))
        return y, final


class LSTMCore(RecurrentCore):
    """:class:`RecurrentCore` with an LSTM cell."""

    def __init__(self, input_size: int, hidden_size: int = 64, num_layers: int = 1):
        super().__init__(input_size, hidden_size, num_layers, cell="lstm")


class GRUCore(RecurrentCore):
    """:class:`RecurrentCore` with a GRU cell."""

    def __init__(self, input_size: int, hidden_size: int = 64, num_layers: int = 1):
        super().__init__(input_size, hidden_size, num_layers, cell="gru")


class GRUGate(nn.Module):
    """GTrXL's gated residual (Parisotto et al., 2020, eq. 10), in place of ``x + y``.

    ``r = sigmoid(W_r y + U_r x)``, ``z = sigmoid(W_z y + U_z x - b)``,
    ``h = tanh(W_g y + U_g (r * x))``, output ``(1 - z) * x + z * h``. With ``b = 2`` the block
    starts close to the identity, which is what makes deep transformers trainable with RL.
    """

    def __init__(self, size: int, bias: float = 2.0):
        super().__init__()
        self.w = nn.Linear(size, 3 * size, bias=False)
        self.u_rz = nn.Linear(size, 2 * size, bias=False)
        self.u_g = nn.Linear(size, size, bias=False)
        self.bias = bias

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        wr, wz, wg = self.w(y).chunk(3, dim=-1)
        ur, uz = self.u_rz(x).chunk(2, dim=-1)
        r = torch.sigmoid(wr + ur)
        z = torch.sigmoid(wz + uz - self.bias)
        h = torch.tanh(wg + self.u_g(r * x))
        return (1 - z) * x + z * h


class _Block(nn.Module):
    """Pre-norm block: ``x -> x (+) mix(LN(x)) -> . (+) MLP(LN(.))`` with ``(+)`` a residual sum
    or a :class:`GRUGate`. ``mix`` is attention; the caller passes it in."""

    def __init__(self, size: int, gating: bool):
        super().__init__()
        self.norm_mix, self.norm_mlp = nn.LayerNorm(size), nn.LayerNorm(size)
        self.mlp = nn.Sequential(nn.Linear(size, 2 * size), nn.ReLU(), nn.Linear(2 * size, size))
        self.gate_mix = GRUGate(size) if gating else None
        self.gate_mlp = GRUGate(size) if gating else None

    def combine(self, x: torch.Tensor, mixed: torch.Tensor) -> torch.Tensor:
        x = self.gate_mix(x, mixed) if self.gate_mix is not None else x + mixed
        out = self.mlp(self.norm_mlp(x))
        return self.gate_mlp(x, out) if self.gate_mlp is not None else x + out


def _episode_ids(episode_start: torch.Tensor) -> torch.Tensor:
    """``[T, B]`` ids that change at every episode start: 0 means "the episode of the state"."""
    return torch.cumsum(episode_start.long(), dim=0)


class TransformerCore(MemoryCore):
    """Causal self-attention over a sliding window of the last ``window`` steps (Transformer-XL
    style memory; Dai et al., 2019), never attending across an episode start.

    Each layer keeps the inputs it saw at the last ``window`` steps as its memory. At step t, a
    layer's query attends to itself and to the ``window`` previous steps of the same episode.
    The rollout (T = 1) and the update (a chunk of T steps after the stored memory) compute the
    same function, so recomputed log-probabilities equal the rollout's.

    Args:
        input_size: Features per step.
        hidden_size: Model width (and output size); divisible by ``num_heads``.
        num_layers: Attention blocks.
        num_heads: Attention heads.
        window: How many previous steps each step can attend to (at least 1).
        positions: ``"learned"``: a learned bias per head and distance; ``"sinusoidal"``: the
            bias is a learned projection of sinusoidal encodings of the distance.
        gating: GTrXL's gated residuals (:class:`GRUGate`) instead of sums.

    Shapes:
        ``x`` ``[T, B, input_size]`` -> ``[T, B, hidden_size]``. State: ``memory`` ``[window, B,
        num_layers, hidden_size]`` and ``valid`` ``[window, B]`` (1 where a memory slot holds a
        step of the current episode).
    """

    recurrent = True

    def __init__(self, input_size: int, hidden_size: int = 64, num_layers: int = 1,
                 num_heads: int = 4, window: int = 32, positions: str = "learned",
                 gating: bool = False):
        super().__init__(input_size, hidden_size)
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        if num_layers < 1 or num_heads < 1 or hidden_size % num_heads:
            raise ValueError(f"need num_layers >= 1 and num_heads >= 1 dividing hidden_size = "
                             f"{hidden_size}, got {num_layers} and {num_heads}")
        if positions not in ("learned", "sinusoidal"):
            raise ValueError(f"positions must be 'learned' or 'sinusoidal', got {positions!r}")
        self.window, self.num_layers, self.num_heads = window, num_layers, num_heads
        self.hidden_size, self.positions = hidden_size, positions
        self.inp = nn.Linear(input_size, hidden_size)
        self.blocks = nn.ModuleList(_Block(hidden_size, gating) for _ in range(num_layers))
        self.qkv = nn.ModuleList(nn.Linear(hidden_size, 3 * hidden_size) for _ in range(num_layers))
        self.out = nn.ModuleList(nn.Linear(hidden_size, hidden_size) for _ in range(num_layers))
        if positions == "learned":
            self.distance_bias = nn.Parameter(torch.zeros(num_layers, num_heads, window + 1))
        else:
            d = torch.arange(window + 1, dtype=torch.float32)[:, None]
            freq = torch.exp(-math.log(10_000.0) * torch.arange(0, hidden_size, 2) / hidden_size)
            table = torch.cat((torch.sin(d * freq), torch.cos(d * freq)), dim=1)
            self.register_buffer("sinusoid", table[:, :hidden_size], persistent=False)
            self.distance_proj = nn.Linear(hidden_size, num_layers * num_heads, bias=False)
        self.final_norm = nn.LayerNorm(hidden_size)

    def initial_state(self, batch: int, device: torch.device | None = None) -> State:
        memory = torch.zeros(self.window, batch, self.num_layers, self.hidden_size, device=device)
        return memory, torch.zeros(self.window, batch, device=device)

    def _bias(self, layer: int) -> torch.Tensor:
        """``[heads, window + 1]`` attention bias by distance."""
        if self.positions == "learned":
            return self.distance_bias[layer]
        table = self.distance_proj(self.sinusoid).view(-1, self.num_layers, self.num_heads)
        return table[:, layer].t()

    def forward(
        self, x: torch.Tensor, state: State, episode_start: torch.Tensor
    ) -> tuple[torch.Tensor, State]:
        memory, valid = state
        length, batch = episode_start.shape
        window, heads = self.window, self.num_heads
        # Keys: the window slots, then the chunk. Episode id 0 is the state's episode.
        ids = _episode_ids(episode_start)  # [T, B]
        key_ids = torch.cat((torch.zeros_like(valid, dtype=torch.long), ids))  # [W+T, B]
        key_ok = torch.cat((valid > 0, torch.ones_like(episode_start)))  # [W+T, B]
        q_pos = torch.arange(window, window + length, device=x.device)
        k_pos = torch.arange(window + length, device=x.device)
        distance = q_pos[:, None] - k_pos[None, :]  # [T, W+T]
        in_window = (distance >= 0) & (distance <= window)
        allowed = (in_window[None]
                   & (ids.t()[:, :, None] == key_ids.t()[:, None, :])
                   & key_ok.t()[:, None, :])  # [B, T, W+T]
        dist_index = distance.clamp(0, window)

        h = self.inp(x)
        new_memory = []
        size = self.hidden_size
        for layer, block in enumerate(self.blocks):
            keys_in = torch.cat((memory[:, :, layer], h))  # [W+T, B, H]
            new_memory.append(keys_in[-window:])
            bias = self._bias(layer)[:, dist_index]  # [heads, T, W+T]
            weight, b = self.qkv[layer].weight, self.qkv[layer].bias
            q = nn.functional.linear(block.norm_mix(h), weight[:size], b[:size])
            if length == 1:  # the rollout: no key or value is projected
                mask = bias[None].masked_fill(~allowed[:, None], float("-inf"))
                attended = self._attend_one_step(layer, block, q, keys_in, mask)
            else:
                kv = nn.functional.linear(block.norm_mix(keys_in), weight[size:], b[size:])
                k, v = kv.chunk(2, dim=-1)

                def split(t: torch.Tensor) -> torch.Tensor:  # [S, B, H] -> [B, heads, S, H/heads]
                    return t.reshape(t.shape[0], batch, heads, -1).permute(1, 2, 0, 3)

                # Written out rather than scaled_dot_product_attention: its CPU path with a float
                # mask of [B, heads, T, W+T] built and scanned for fully masked rows took a
                # third longer here. Every query sees itself, so no row is fully masked.
                scores = split(q) @ split(k).transpose(-1, -2) / math.sqrt(size // heads)
                scores = (scores + bias).masked_fill_(~allowed[:, None], float("-inf"))
                attended = torch.softmax(scores, dim=-1) @ split(v)  # [B, heads, T, H/heads]
            mixed = self.out[layer](attended.permute(2, 0, 1, 3).reshape(length, batch, -1))
            h = block.combine(h, mixed)

        last_ids = ids[-1]  # the episode each copy is in after the chunk
        new_valid = (key_ok & (key_ids == last_ids[None]))[-window:].to(valid.dtype)
        return self.final_norm(h), (_stack(new_memory, 2), new_valid)

    def _attend_one_step(self, layer: int, block: _Block, q: torch.Tensor, keys_in: torch.Tensor,
                         mask: torch.Tensor) -> torch.Tensor:
        r"""Attention of one query per copy with the key and value projections folded into it.

        With ``LN(m) = gamma * n(m) + beta`` (``n`` the parameter-free normalisation) and a
        head's key projection :math:`k_j = W_k LN(m_j) + b_k`, the score :math:`q \cdot k_j`
        is :math:`(\gamma \odot W_k^\top q) \cdot n(m_j)` plus a term that does not depend on
        :math:`j` (softmax ignores it); as the weights sum to 1, the output
        :math:`\sum_j a_j v_j` is :math:`W_v (\gamma \odot \sum_j a_j n(m_j) + \beta) + b_v`.
        So one rollout step costs ``O(W H)`` per copy and head instead of projecting all ``W``
        keys and values (``O(W H^2)``); it equals the update's attention up to rounding.

        Shapes:
            ``q`` ``[1, B, H]``, ``keys_in`` ``[W+1, B, H]``, ``mask`` ``[B, heads, 1, W+1]``
            -> ``[B, heads, 1, H/heads]``.
        """
        heads, size = self.num_heads, self.hidden_size
        head = size // heads
        norm = block.norm_mix
        normed = nn.functional.layer_norm(keys_in, (size,), eps=norm.eps).transpose(0, 1)
        weight, b = self.qkv[layer].weight, self.qkv[layer].bias
        w_k = weight[size: 2 * size].view(heads, head, size)
        w_v, b_v = weight[2 * size:].view(heads, head, size), b[2 * size:].view(heads, head)
        q = q[0].view(-1, heads, head)  # [B, heads, d]
        query = torch.einsum("bhd,hdi->bhi", q, w_k) * norm.weight  # [B, heads, H]
        scores = query @ normed.transpose(1, 2) / math.sqrt(head) + mask[:, :, 0]  # [B, heads, W+1]
        context = torch.softmax(scores, dim=-1) @ normed  # [B, heads, H]
        context = context * norm.weight + norm.bias
        attended = torch.einsum("bhi,hdi->bhd", context, w_v) + b_v
        return attended.unsqueeze(2)


class LinearAttentionCore(MemoryCore):
    """Linear-attention transformer (Katharopoulos et al., 2020): constant memory per step.

    Per layer and head, with ``phi(x) = elu(x) + 1``, the state is ``S = sum_j phi(k_j) v_j^T``
    and ``z = sum_j phi(k_j)`` over the current episode, and ``y_t = phi(q_t)^T S_t /
    (phi(q_t)^T z_t)``. The rollout uses this recurrent form; the update computes a chunk in the
    parallel form (a masked ``T x T`` product plus the stored state), which gives the same values.

    Args:
        input_size: Features per step.
        hidden_size: Model width (and output size); divisible by ``num_heads``.
        num_layers: Attention blocks.
        num_heads: Heads.
        gating: GTrXL's gated residuals instead of sums.

    Shapes:
        ``x`` ``[T, B, input_size]`` -> ``[T, B, hidden_size]``. State: ``S`` ``[num_layers, B,
        heads, d, d]`` and ``z`` ``[num_layers, B, heads, d]`` with ``d = hidden_size / heads``.
    """

    recurrent = True

    def __init__(self, input_size: int, hidden_size: int = 64, num_layers: int = 1,
                 num_heads: int = 4, gating: bool = False):
        super().__init__(input_size, hidden_size)
        if num_layers < 1 or num_heads < 1 or hidden_size % num_heads:
            raise ValueError(f"need num_layers >= 1 and num_heads >= 1 dividing hidden_size = "
                             f"{hidden_size}, got {num_layers} and {num_heads}")
        self.num_layers, self.num_heads = num_layers, num_heads
        self.head_size = hidden_size // num_heads
        self.inp = nn.Linear(input_size, hidden_size)
        self.blocks = nn.ModuleList(_Block(hidden_size, gating) for _ in range(num_layers))
        self.qkv = nn.ModuleList(nn.Linear(hidden_size, 3 * hidden_size) for _ in range(num_layers))
        self.out = nn.ModuleList(nn.Linear(hidden_size, hidden_size) for _ in range(num_layers))
        self.final_norm = nn.LayerNorm(hidden_size)

    def initial_state(self, batch: int, device: torch.device | None = None) -> State:
        d, heads = self.head_size, self.num_heads
        return (torch.zeros(self.num_layers, batch, heads, d, d, device=device),
                torch.zeros(self.num_layers, batch, heads, d, device=device))

    def forward(
        self, x: torch.Tensor, state: State, episode_start: torch.Tensor
    ) -> tuple[torch.Tensor, State]:
        big_s, big_z = state
        length, batch = episode_start.shape
        ids = _episode_ids(episode_start)  # [T, B]; 0 = the state's episode
        same = (ids.t()[:, :, None] == ids.t()[:, None, :]).tril()  # [B, T, T], causal
        keeps_state = (ids.t() == 0).to(x.dtype)[:, None, :, None]  # [B, 1, T, 1]
        last_episode = (ids == ids[-1:]).t().to(x.dtype)[:, None, :, None]  # [B, 1, T, 1]
        carry_to_end = (ids[-1] == 0).to(x.dtype)[:, None, None, None]  # [B, 1, 1, 1]

        h = self.inp(x)
        new_s, new_z = [], []
        for layer, block in enumerate(self.blocks):
            q, k, v = self.qkv[layer](block.norm_mix(h)).chunk(3, dim=-1)

            def split(t: torch.Tensor) -> torch.Tensor:  # [T, B, H] -> [B, heads, T, d]
                return t.reshape(length, batch, self.num_heads, -1).permute(1, 2, 0, 3)

            q = nn.functional.elu(split(q)) + 1
            k = nn.functional.elu(split(k)) + 1
            v = split(v)
            s0, z0 = big_s[layer], big_z[layer]  # [B, heads, d, d], [B, heads, d]
            if length == 1:  # the rollout: the recurrent form, S_t = S_{t-1} + k_t v_t^T first
                s_t = torch.addcmul(carry_to_end * s0, k[:, :, 0, :, None], v[:, :, 0, None, :])
                z_t = carry_to_end[..., 0] * z0 + k[:, :, 0]
                attended = (q @ s_t) / (q @ z_t[..., None] + 1e-6)
                new_s.append(s_t)
                new_z.append(z_t)
            else:
                scores = (q @ k.transpose(-1, -2)) * same[:, None].to(x.dtype)  # [B, heads, T, T]
                numerator = scores @ v + keeps_state * (q @ s0)
                denominator = scores.sum(-1, keepdim=True) + keeps_state * (q @ z0[..., None])
                attended = numerator / (denominator + 1e-6)
                new_s.append(carry_to_end * s0 + (k * last_episode).transpose(-1, -2) @ v)
                new_z.append(carry_to_end[..., 0] * z0 + (k * last_episode).sum(2))
            mixed = self.out[layer](attended.permute(2, 0, 1, 3).reshape(length, batch, -1))
            h = block.combine(h, mixed)
        return self.final_norm(h), (_stack(new_s, 0), _stack(new_z, 0))


def _stack(tensors: list[torch.Tensor], dim: int) -> torch.Tensor:
    """``torch.stack``, without the copy for a single tensor (one layer: every rollout step)."""
    return tensors[0].unsqueeze(dim) if len(tensors) == 1 else torch.stack(tensors, dim)


def _activation(name: str) -> nn.Module:
    activations = {"tanh": nn.Tanh, "relu": nn.ReLU}
    if name not in activations:
        raise ValueError(f"unknown activation {name!r}: expected one of {sorted(activations)}")
    return activations[name]()


#: Core name -> class. ``--agent NAME`` and ``PPOConfig.core`` choose from these.
CORES: dict[str, type[MemoryCore]] = {
    "mlp": MLPCore,
    "lstm": LSTMCore,
    "gru": GRUCore,
    "transformer": TransformerCore,
    "linear": LinearAttentionCore,
}


def make_core(name: str, input_size: int, hidden_size: int, **kwargs) -> MemoryCore:
    """Build the core called ``name`` (a key of :data:`CORES`)."""
    if name not in CORES:
        raise ValueError(f"unknown memory core {name!r}: expected one of {sorted(CORES)}")
    return CORES[name](input_size, hidden_size, **kwargs)
