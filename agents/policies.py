"""``ActorCritic`` = observation encoder -> memory core -> action head and value head.

The policy is composed, never subclassed per variant (docs/architecture.md, "The policy"): the
encoder is chosen from the observation space, the core by name from
:data:`agents.memory.CORES`, the action head from the action space. Every method takes
time-major sequences ``[T, B, ...]``; the rollout uses ``T = 1``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents.memory import MemoryCore, State, make_core

#: Value heads: a plain ``Linear(D, 1)`` or a Bayesian one (:mod:`agents.bayesian`).
VALUE_HEADS = ("linear", "bayes")
#: The Dict-observation key that carries valid actions (PettingZoo's convention).
ACTION_MASK = "action_mask"


def tree_map(fn: Callable[[torch.Tensor], torch.Tensor], obs: Any) -> Any:
    """Apply ``fn`` to a tensor, or to every tensor of a dict observation."""
    if isinstance(obs, dict):
        return {key: fn(value) for key, value in obs.items()}
    return fn(obs)


def unsqueeze0(t: torch.Tensor) -> torch.Tensor:
    """A batch of one step: ``[B, ...]`` -> ``[1, B, ...]``."""
    return t.unsqueeze(0)


def _init(layer: nn.Linear, gain: float) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class VectorEncoder(nn.Module):
    """Flatten a Box (or one-hot a Discrete, or concatenate the one-hots of a MultiDiscrete's
    entries, as SB3's preprocessing does) observation, then ``Linear -> tanh``.

    Shapes:
        ``obs`` ``[T, B, *obs_shape]`` -> ``[T, B, hidden_size]``.
    """

    def __init__(self, observation_space: gym.Space, hidden_size: int):
        super().__init__()
        self.multi_discrete = isinstance(observation_space, gym.spaces.MultiDiscrete)
        if isinstance(observation_space, gym.spaces.Discrete):
            self.one_hot = int(observation_space.n)
            in_features = self.one_hot
        elif self.multi_discrete:
            nvec = observation_space.nvec.reshape(-1).astype(np.int64)
            self.one_hot = 0
            in_features = int(nvec.sum())
            # Where each entry's one-hot starts in the concatenation, minus the entry's start.
            starts = np.concatenate(([0], np.cumsum(nvec)[:-1]))
            shift = starts - observation_space.start.reshape(-1).astype(np.int64)
            self.register_buffer("shift", torch.as_tensor(shift), persistent=False)
        elif isinstance(observation_space, gym.spaces.Box):
            self.one_hot = 0
            in_features = int(np.prod(observation_space.shape))
        else:
            raise TypeError(
                f"no encoder for observation space {observation_space}: expected a Box, Discrete "
                "or MultiDiscrete (Dict, grid and graph encoders come with their issues)"
            )
        self.out_features = hidden_size
        self.net = nn.Sequential(
            _init(nn.Linear(in_features, hidden_size), math.sqrt(2)), nn.Tanh()
        )

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.one_hot:
            x = nn.functional.one_hot(obs.long(), self.one_hot).float()
        elif self.multi_discrete:
            index = obs.flatten(2).long() + self.shift
            x = torch.zeros(*index.shape[:2], self.net[0].in_features, device=obs.device)
            x = x.scatter_(2, index, 1.0)
        else:
            x = obs.flatten(2).float()
        return self.net(x)


class DictEncoder(nn.Module):
    """Concatenate the entries of a Dict observation (``action_mask`` excluded), then ``Linear ->
    tanh``: a Box entry flattened, a Discrete one one-hot, a MultiDiscrete one the concatenated
    one-hots of its entries (as :class:`VectorEncoder`).

    Shapes:
        each entry ``[T, B, *shape]`` -> ``[T, B, hidden_size]``.
    """

    def __init__(self, observation_space: gym.spaces.Dict, hidden_size: int):
        super().__init__()
        self.keys = [k for k in observation_space.spaces if k != ACTION_MASK]
        widths = []
        for key in self.keys:
            sub = observation_space[key]
            if isinstance(sub, gym.spaces.Discrete):
                widths.append(int(sub.n))
            elif isinstance(sub, gym.spaces.MultiDiscrete):
                widths.append(int(sub.nvec.sum()))
            elif isinstance(sub, gym.spaces.Box):
                widths.append(int(np.prod(sub.shape)))
            else:
                raise TypeError(f"no encoder for Dict entry {key!r}: {sub} (expected Box, "
                                "Discrete or MultiDiscrete)")
        self.one_hot = {k: int(observation_space[k].n) for k in self.keys
                        if isinstance(observation_space[k], gym.spaces.Discrete)}
        # MultiDiscrete entries: the concatenated one-hots of their entries, as VectorEncoder.
        self.multi_one_hot: dict[str, tuple[int, str]] = {}
        for key in self.keys:
            sub = observation_space[key]
            if isinstance(sub, gym.spaces.MultiDiscrete):
                nvec = sub.nvec.reshape(-1).astype(np.int64)
                shift = np.concatenate(([0], np.cumsum(nvec)[:-1])) - sub.start.reshape(-1)
                name = f"shift_{len(self.multi_one_hot)}"
                self.register_buffer(name, torch.as_tensor(shift.astype(np.int64)),
                                     persistent=False)
                self.multi_one_hot[key] = (int(nvec.sum()), name)
        self.out_features = hidden_size
        self.net = nn.Sequential(_init(nn.Linear(sum(widths), hidden_size), math.sqrt(2)),
                                 nn.Tanh())

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = []
        for key in self.keys:
            value = obs[key]
            if key in self.one_hot:
                parts.append(nn.functional.one_hot(value.long(), self.one_hot[key]).float())
            elif key in self.multi_one_hot:
                width, name = self.multi_one_hot[key]
                index = value.flatten(2).long() + getattr(self, name)
                x = torch.zeros(*index.shape[:2], width, device=value.device)
                parts.append(x.scatter_(2, index, 1.0))
            else:
                parts.append(value.flatten(2).float())
        return self.net(torch.cat(parts, dim=-1))


class GraphObsEncoder(nn.Module):
    """Padded graph observations -> a graph embedding, by a PyG GNN.

    The padded form is described in docs/architecture.md, "Graph observations".

    ``graphs.GraphEncoder`` (GCN, GAT, GATv2, GIN or GraphSAGE, with a mean/max/attention
    readout) embeds the graph; ``Linear -> tanh`` maps the readout to the core's width. Edges are
    not validated here (validation synchronises with the device); the environment's adapters and
    tests check the padded form.

    Args:
        observation_space: A Dict with ``x`` ``[N_max, F]``, ``edge_index``, ``node_mask``,
            ``edge_mask`` (and optionally ``edge_attr``, ``action_mask``).
        hidden_size: Width of the GNN and of the output.
        model, num_layers, readout: See ``graphs.GraphEncoder``.

    Shapes:
        entries ``[T, B, ...]`` -> ``[T, B, hidden_size]``.
    """

    def __init__(self, observation_space: gym.spaces.Dict, hidden_size: int, model: str = "gcn",
                 num_layers: int = 2, readout: str = "mean"):
        super().__init__()
        from graphs import GraphEncoder

        in_features = int(observation_space["x"].shape[-1])
        self.gnn = GraphEncoder(in_features, hidden_size, num_layers, model, readout,
                                validate=False)
        self.out_features = hidden_size
        self.net = nn.Sequential(_init(nn.Linear(hidden_size, hidden_size), math.sqrt(2)),
                                 nn.Tanh())

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.embed(obs)[1]

    def embed(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Node embeddings ``[T, B, N_max, hidden_size]`` (the GNN's, zero at masked slots) and
        the graph features ``[T, B, hidden_size]`` (what :meth:`forward` returns), in one pass."""
        nodes, graph = self.gnn({k: v for k, v in obs.items() if k in GRAPH_KEYS})
        return nodes, self.net(graph)


#: The keys of a padded graph observation (``edge_attr`` is optional).
GRAPH_KEYS = ("x", "edge_index", "node_mask", "edge_mask", "edge_attr")


def is_graph_space(space: gym.Space) -> bool:
    """A Dict space holding the padded graph form."""
    return isinstance(space, gym.spaces.Dict) and all(
        key in space.spaces for key in GRAPH_KEYS[:4]
    )


#: ``encoder_kwargs={"model": FLAT}`` encodes a graph observation as a plain Dict: an MLP over
#: the flattened padding (``x``, ``edge_index``, masks; ``action_mask`` excluded), a baseline
#: that sees the graph's structure only as numbers in fixed slots.
FLAT = "flat"


def make_encoder(
    observation_space: gym.Space, hidden_size: int, encoder_kwargs: dict | None = None
) -> nn.Module:
    """The encoder for an observation space: padded graphs -> GNN, other Dicts -> concatenation
    and MLP, vectors -> MLP (docs/architecture.md, "The policy"). ``encoder_kwargs`` go to the GNN;
    ``{"model": "flat"}`` gives a graph space the Dict encoder instead (see :data:`FLAT`)."""
    kwargs = dict(encoder_kwargs or {})
    kwargs.pop("node_head", None)  # an option of ActorCritic's action head, not of the encoder
    if is_graph_space(observation_space) and kwargs.get("model") == FLAT:
        extra = sorted(set(kwargs) - {"model"})
        if extra:
            raise ValueError(f"the flat encoder takes no GNN options; remove {extra} from "
                             "encoder_kwargs or pick a GNN model (gcn, gat, gatv2, gin, sage)")
        return DictEncoder(observation_space, hidden_size)
    if is_graph_space(observation_space):
        return GraphObsEncoder(observation_space, hidden_size, **kwargs)
    if isinstance(observation_space, gym.spaces.Dict):
        return DictEncoder(observation_space, hidden_size)
    return VectorEncoder(observation_space, hidden_size)


def _last_layer(layer: nn.Linear, thompson: bool) -> nn.Module:
    """``layer``, or a Bayesian layer initialised from it (``agents.bayesian.ThompsonLinear``)."""
    if not thompson:
        return layer
    from agents.bayesian import ThompsonLinear

    return ThompsonLinear(layer)


def _apply(layer: nn.Module, y: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
    """``layer(y)``; a Thompson layer with a weight sample's ``noise`` (its mean without one)."""
    return layer(y) if noise is None else layer(y, noise)


def action_mask(obs: Any) -> torch.Tensor | None:
    """The ``action_mask`` entry of a Dict observation as bool (PettingZoo's convention)."""
    if isinstance(obs, dict) and ACTION_MASK in obs:
        return obs[ACTION_MASK].bool()
    return None


def _sample_categorical(logp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One sample per row of log-probabilities ``[..., n]`` and its log-probability ``[...]``.

    Gumbel-max: one kernel chain, no ``torch.distributions`` overhead in the hot loop.
    """
    gumbel = -torch.log(-torch.log(torch.rand_like(logp).clamp_(1e-20, 1.0)))
    index = (logp + gumbel).argmax(dim=-1)
    return index, logp.gather(-1, index.unsqueeze(-1)).squeeze(-1)


class CategoricalHead(nn.Module):
    """Categorical policy over ``Discrete(n)``: ``logits = W y``, actions ``start .. start+n-1``.

    Every action head takes ``(y, mask=None, noise=None)``: ``mask`` the valid actions,
    ``noise`` the weight sample of a Thompson last layer (``thompson=True``; ``None`` uses the
    posterior mean).
    """

    def __init__(self, in_features: int, space: gym.spaces.Discrete, thompson: bool = False):
        super().__init__()
        self.start = int(space.start)
        self.linear = _last_layer(_init(nn.Linear(in_features, int(space.n)), 0.01), thompson)

    def logits(self, y: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """``[..., in_features]`` -> ``[..., n]``."""
        return _apply(self.linear, y, noise)

    def _log_probs(self, y: torch.Tensor, mask: torch.Tensor | None,
                   noise: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.logits(y, noise)
        if mask is not None:  # invalid actions get probability 0
            logits = logits.masked_fill(~mask, -1e8)
        return torch.log_softmax(logits, dim=-1)

    def sample(
        self, y: torch.Tensor, mask: torch.Tensor | None = None, noise: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        index, logprob = _sample_categorical(self._log_probs(y, mask, noise))
        return index + self.start, logprob

    def evaluate(
        self, y: torch.Tensor, action: torch.Tensor, mask: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logp = self._log_probs(y, mask, noise)
        index = (action.long() - self.start).unsqueeze(-1)
        entropy = -(logp.exp() * logp).sum(-1)
        return logp.gather(-1, index).squeeze(-1), entropy

    def mode(self, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self._log_probs(y, mask).argmax(dim=-1) + self.start


class NodeHead(CategoricalHead):
    r"""Categorical policy over the node slots of a graph: one logit per node, from its embedding.

    For node slot :math:`i` with GNN embedding :math:`h_i` and the core's output :math:`y` (the
    memory of the whole graph and of the past),

    .. math::
        \ell_i = w^\top \tanh\big(W [h_i ; y] + b\big) + c,

    the same small MLP for every node, so the policy tells nodes apart by their structure and is
    equivariant to the order of the slots. Action ``i`` of ``Discrete(n)`` is node slot ``i``:
    the head scores the first ``n <= N_max`` slots (all of them when the padding is ``n``, the
    native tasks' form). Invalid nodes are masked through ``action_mask`` as for
    :class:`CategoricalHead`; without one, :meth:`ActorCritic.action_mask` masks the padding
    slots (``node_mask``). The input is what :meth:`ActorCritic._head_input` builds.

    Args:
        node_features: Width :math:`H` of the node embeddings.
        in_features: Width :math:`D` of the core's output.
        space: ``Discrete(n)`` with ``start = 0``: the action is one of the first ``n`` node
            slots.

    Shapes:
        ``y`` ``[..., n, H + D]`` (each scored node's embedding beside the core's output) ->
        logits ``[..., n]``.
    """

    def __init__(self, node_features: int, in_features: int, space: gym.spaces.Discrete):
        nn.Module.__init__(self)
        if not isinstance(space, gym.spaces.Discrete) or int(space.start) != 0:
            raise ValueError(f"a node head needs Discrete(n) starting at 0, got {space}")
        self.start = 0
        #: How many node slots the head scores (the first ones): the action's ``n``.
        self.num_nodes = int(space.n)
        self.mlp = nn.Sequential(
            _init(nn.Linear(node_features + in_features, in_features), math.sqrt(2)), nn.Tanh(),
            _init(nn.Linear(in_features, 1), 0.01),
        )

    def logits(self, y: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        return self.mlp(y).squeeze(-1)


class MultiCategoricalHead(nn.Module):
    r"""Independent categoricals over the dimensions of a ``MultiDiscrete`` or ``MultiBinary``
    space, one linear layer for all their logits.

    For dimension :math:`i` with :math:`n_i` values starting at :math:`s_i` (``space.start``),

    .. math::
        \log \pi(a \mid y) = \sum_i \log \operatorname{softmax}(W_i y)_{a_i - s_i}, \qquad
        \mathcal{H} = \sum_i \mathcal{H}\big(\operatorname{softmax}(W_i y)\big),

    as stable-baselines3's ``MultiCategoricalDistribution``. ``MultiBinary(shape)`` is treated as
    ``MultiDiscrete`` with two values per bit (as sb3-contrib's ``MaskablePPO`` does); its
    actions come back as int8 (``envs.core.torch_dtype``), MultiDiscrete ones as int64. A
    multi-dimensional ``nvec`` is flattened in C order.

    Masks follow sb3-contrib's ``MaskablePPO``: ``action_mask`` ``[..., sum(n_i)]`` is the
    concatenation of the per-dimension masks (for ``MultiBinary(k)``: ``[..., 2k]``, may-be-0 then
    may-be-1 for each bit). Masked values get probability 0 in their dimension, as in
    :class:`CategoricalHead`; a dimension whose values are all masked samples uniformly among
    its own values.

    Args:
        in_features: Width :math:`D` of the core's output.
        space: The ``MultiDiscrete`` or ``MultiBinary`` action space.

    Shapes:
        ``y`` ``[..., D]`` -> actions ``[..., *space.shape]``; log-probabilities and entropies
        ``[...]``; ``mask`` ``[..., sum(n_i)]``.
    """

    #: Logit of the slots that pad a dimension to the widest one (below a masked value's -1e8).
    _PAD = -1e9

    def __init__(self, in_features: int, space: gym.spaces.MultiDiscrete | gym.spaces.MultiBinary,
                 thompson: bool = False):
        super().__init__()
        from envs.core import torch_dtype

        if isinstance(space, gym.spaces.MultiBinary):
            nvec = np.full(space.shape, 2, dtype=np.int64)
            start = np.zeros(space.shape, dtype=np.int64)
        elif isinstance(space, gym.spaces.MultiDiscrete):
            nvec = np.asarray(space.nvec, dtype=np.int64)
            start = np.asarray(space.start, dtype=np.int64)
        else:
            raise TypeError(f"MultiCategoricalHead needs a MultiDiscrete or MultiBinary space, "
                            f"got {space}")
        self.shape = tuple(space.shape)
        self.dtype = torch_dtype(space)
        self.nvec = nvec.reshape(-1)
        #: Width of the flat logits and of ``action_mask``: ``sum(n_i)``.
        self.num_logits = int(self.nvec.sum())
        widest = int(self.nvec.max()) if self.nvec.size else 1
        offsets = np.concatenate(([0], np.cumsum(self.nvec)[:-1]))
        slot = np.arange(widest)
        # [d, K] positions into the flat logits; slots past n_i repeat the last one (padding).
        index = offsets[:, None] + np.minimum(slot[None, :], self.nvec[:, None] - 1)
        self.register_buffer("index", torch.as_tensor(index), persistent=False)
        self.register_buffer("valid", torch.as_tensor(slot[None, :] < self.nvec[:, None]),
                             persistent=False)
        self.register_buffer("start", torch.as_tensor(start.reshape(-1)), persistent=False)
        self.linear = _last_layer(_init(nn.Linear(in_features, self.num_logits), 0.01), thompson)

    def _log_probs(self, y: torch.Tensor, mask: torch.Tensor | None,
                   noise: torch.Tensor | None = None) -> torch.Tensor:
        """``[..., d, K]`` log-probabilities, dimension by dimension."""
        logits = _apply(self.linear, y, noise)[..., self.index]
        if mask is not None:  # invalid values get probability 0
            logits = logits.masked_fill(~mask[..., self.index], -1e8)
        return torch.log_softmax(logits.masked_fill(~self.valid, self._PAD), dim=-1)

    def _to_action(self, index: torch.Tensor) -> torch.Tensor:
        return (index + self.start).unflatten(-1, self.shape).to(self.dtype)

    def sample(
        self, y: torch.Tensor, mask: torch.Tensor | None = None, noise: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        index, logprob = _sample_categorical(self._log_probs(y, mask, noise))
        return self._to_action(index), logprob.sum(-1)

    def evaluate(
        self, y: torch.Tensor, action: torch.Tensor, mask: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logp = self._log_probs(y, mask, noise)
        flat = action.reshape(action.shape[: action.dim() - len(self.shape)] + (-1,))
        index = (flat.long() - self.start).unsqueeze(-1)
        entropy = -(logp.exp() * logp).sum((-2, -1))
        return logp.gather(-1, index).squeeze(-1).sum(-1), entropy

    def mode(self, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self._to_action(self._log_probs(y, mask).argmax(dim=-1))


class GaussianHead(nn.Module):
    """Diagonal Gaussian over a Box: ``mean = W y``, a learned state-independent ``log_std``.

    Sampled actions are unbounded; the caller clips them to the box before stepping the environment
    and keeps the unclipped sample for the log-probability (as stable-baselines3 does).
    """

    def __init__(self, in_features: int, space: gym.spaces.Box, log_std_init: float = 0.0,
                 thompson: bool = False):
        super().__init__()
        self.shape = space.shape
        dim = int(np.prod(space.shape))
        self.mean = _last_layer(_init(nn.Linear(in_features, dim), 0.01), thompson)
        self.log_std = nn.Parameter(torch.full((dim,), float(log_std_init)))

    def _log_prob(self, mean: torch.Tensor, flat_action: torch.Tensor) -> torch.Tensor:
        z = (flat_action - mean) * torch.exp(-self.log_std)
        return (-0.5 * z.square() - self.log_std - 0.5 * math.log(2 * math.pi)).sum(-1)

    def sample(
        self, y: torch.Tensor, mask: torch.Tensor | None = None, noise: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mean = _apply(self.mean, y, noise)
        flat = mean + torch.randn_like(mean) * self.log_std.exp()
        return flat.unflatten(-1, self.shape), self._log_prob(mean, flat)

    def evaluate(
        self, y: torch.Tensor, action: torch.Tensor, mask: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mean = _apply(self.mean, y, noise)
        logp = self._log_prob(mean, action.flatten(y.dim() - 1).float())
        entropy = (0.5 + 0.5 * math.log(2 * math.pi) + self.log_std).sum().expand_as(logp)
        return logp, entropy

    def mode(self, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.mean(y).unflatten(-1, self.shape)


def make_action_head(in_features: int, space: gym.Space, thompson: bool = False) -> nn.Module:
    """The action head for ``space``: categorical (Discrete), one categorical per dimension
    (MultiDiscrete, MultiBinary) or diagonal Gaussian (Box); ``thompson`` makes its last layer
    Bayesian (:class:`agents.bayesian.ThompsonLinear`)."""
    if isinstance(space, gym.spaces.Discrete):
        return CategoricalHead(in_features, space, thompson)
    if isinstance(space, (gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)):
        return MultiCategoricalHead(in_features, space, thompson)
    if isinstance(space, gym.spaces.Box):
        return GaussianHead(in_features, space, thompson=thompson)
    raise TypeError(f"no action head for {space}: expected Discrete, MultiDiscrete, MultiBinary "
                    "or Box")


def wants_node_head(observation_space: gym.Space, action_space: gym.Space) -> bool:
    """Whether the action picks a node slot by default: a graph observation with
    ``Discrete(N_max)`` actions (``start = 0``) where ``N_max`` is its number of node slots.

    Only this exact match turns the node head on unasked. A ``Discrete(n)`` action with fewer
    values than node slots (a third-party graph env padded to the adapter's default 64 slots)
    may name a node, or may be a class, a direction or the k-th neighbour; scoring node slots
    for those would silently cripple the policy, so it takes ``node_head=True`` (see
    :func:`node_head_problem`) or padding the graphs to ``n`` slots
    (``envs.make(..., graph_padding={"max_nodes": n})``).
    """
    return (
        is_graph_space(observation_space)
        and isinstance(action_space, gym.spaces.Discrete)
        and int(action_space.start) == 0
        and int(action_space.n) == int(observation_space["x"].shape[0])
    )


def node_head_problem(observation_space: gym.Space, action_space: gym.Space) -> str | None:
    """Why a node head cannot serve these spaces, or None when it can.

    A node head needs a padded graph observation and a ``Discrete(n)`` action with ``start = 0``
    and ``n <= N_max``: action ``i`` names node slot ``i``.
    """
    if not is_graph_space(observation_space):
        return (f"the observation space is not a padded graph (a Dict with "
                f"{', '.join(GRAPH_KEYS[:4])}), got {observation_space}")
    slots = int(observation_space["x"].shape[0])
    if not isinstance(action_space, gym.spaces.Discrete) or int(action_space.start) != 0:
        return (f"the action space must be Discrete(n) starting at 0 (action i names node slot "
                f"i), got {action_space}: this action is not a node index")
    if int(action_space.n) > slots:
        return (f"the action space {action_space} has more values than the {slots} node slots of "
                f"the padding: if the action names a node, pad the graphs to at least "
                f"{int(action_space.n)} slots (env_kwargs={{'graph_padding': {{'max_nodes': "
                f"{int(action_space.n)}}}}}); otherwise drop node_head")
    return None


class PolicyState(NamedTuple):
    """What a policy carries from one step to the next: its actor core's and its critic core's
    state (each a tuple of ``[layers, B, ...]`` tensors, see :mod:`agents.memory`; the critic's
    is ``()`` when the trunk is shared)."""

    actor: State
    critic: State = ()

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> PolicyState:
        """``fn`` applied to every tensor of both states."""
        return PolicyState(tuple(fn(s) for s in self.actor), tuple(fn(s) for s in self.critic))


class ActStep(NamedTuple):
    """One step of :meth:`ActorCritic.act` for a batch ``[B]``.

    Attributes:
        action: ``[B, *action_shape]``.
        logprob: ``[B]``.
        value: ``[B]`` (a Bayesian value head's posterior mean).
        state: The state after the step.
        inputs: What :meth:`ActorCritic.evaluate` needs back beside observation, action and
            state, by name (the rollout stores whatever is here): ``critic_obs`` (a centralised
            critic's input), ``policy_noise`` (the weight sample of a Thompson head, one per
            episode and copy).
        value_std: ``[B]``, the value's epistemic std (Bayesian value head), else None.
        critic_features: ``[B, D]``, the critic's features (Bayesian value head: the visited
            states its covariance is fitted to), else None.
    """

    action: torch.Tensor
    logprob: torch.Tensor
    value: torch.Tensor
    state: PolicyState
    inputs: dict[str, torch.Tensor]
    value_std: torch.Tensor | None = None
    critic_features: torch.Tensor | None = None


class Evaluation(NamedTuple):
    """:meth:`ActorCritic.evaluate` of stored sequences ``[T, B]``.

    Attributes:
        logprob, entropy, value: ``[T, B]``.
        policy_penalty: What a Bayesian policy head adds to the policy loss (its KL to the prior
            over the number of samples), a scalar; 0 without one.
        value_penalty: What a Bayesian value head adds to the value loss (the rest of its
            ELBO), a scalar; 0 without one.
        groups: ``[T, B]`` int64, each sample's group in a mixed team: set by
            ``agents.groups.GroupedActorCritic`` (one policy per group), or by the PPO update
            for a shared policy (``PPOConfig.balance_groups``); the loss normalises advantages
            per group. None otherwise.
    """

    logprob: torch.Tensor
    entropy: torch.Tensor
    value: torch.Tensor
    policy_penalty: torch.Tensor | float = 0.0
    value_penalty: torch.Tensor | float = 0.0
    groups: torch.Tensor | None = None


class ActorCritic(nn.Module):
    """Encoder -> memory core -> (action head, value head), for one agent or many sharing weights.

    Args:
        observation_space: Single-copy observation space.
        action_space: Single-copy action space: Discrete, MultiDiscrete, MultiBinary
            (:class:`MultiCategoricalHead`) or Box.
        core: Name of the memory core (a key of :data:`agents.memory.CORES`).
        hidden_size: Width of the encoder output and of the core.
        core_kwargs: Extra arguments of the core (layers, heads, window...).
        shared_trunk: One encoder and core for both heads. When false (the default, as in
            stable-baselines3 and CleanRL), the value head gets an encoder and core of its own, so
            value-loss gradients do not shape the policy's features; :class:`PolicyState` then
            holds both cores' states.
        critic_observation_space: What the value head sees when it is not the observation (the
            global state of a multi-agent task: MAPPO's centralised critic); needs
            ``shared_trunk=False``. Methods then take ``critic_obs`` beside ``obs``.
        encoder_kwargs: Options of the graph encoder (``model``, ``num_layers``, ``readout``);
            ``model="flat"`` encodes a graph as a plain Dict (an MLP over the flattened padding).
        node_head: The action head of a graph task whose action is a node slot:
            :class:`NodeHead`, one logit per node from its GNN embedding and the core's output;
            when false, a :class:`CategoricalHead` on the core's output alone. ``None`` (the
            default) turns it on where the action is ``Discrete(N_max)`` (see
            :func:`wants_node_head`). ``True`` also gives it to a ``Discrete(n)`` action with
            ``n < N_max`` (a third-party graph env padded to more slots than it has nodes),
            which then names one of the first ``n`` slots; where no node head fits (see
            :func:`node_head_problem`) ``True`` is a ``ValueError``.
        communication: Multi-agent only: ``{"num_agents": A, "model": ..., "num_layers": ...,
            "graph": ..., "k": ..., "radius": ..., "position_slice": ...}`` adds
            :class:`graphs.AgentCommunication` between the actor's encoder and core; it reads
            the agents' positions from the actor's raw observation.
        value_head: ``"linear"`` (a plain ``Linear(D, 1)``) or ``"bayes"``
            (:class:`agents.bayesian.BayesianValueHead`: a Pyro Bayesian linear layer whose
            epistemic std comes with every value, :attr:`ActStep.value_std`).
        thompson_policy: Make the action head's last layer Bayesian
            (:class:`agents.bayesian.ThompsonLinear`): one weight sample per episode and copy,
            drawn by :meth:`act` where an episode starts and handed back as
            ``inputs["policy_noise"]``.

    Shapes:
        ``obs`` ``[T, B, *obs_shape]``, ``episode_start`` ``[T, B]``, ``action`` ``[T, B,
        *action_shape]``; log-probabilities, entropies and values ``[T, B]``.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        core: str = "mlp",
        *,
        hidden_size: int = 64,
        core_kwargs: dict | None = None,
        shared_trunk: bool = False,
        critic_observation_space: gym.Space | None = None,
        encoder_kwargs: dict | None = None,
        node_head: bool | None = None,
        communication: dict | None = None,
        value_head: str = "linear",
        thompson_policy: bool = False,
    ):
        super().__init__()
        if value_head not in VALUE_HEADS:
            raise ValueError(f"value_head must be one of {VALUE_HEADS}, got {value_head!r}")
        if shared_trunk and critic_observation_space is not None:
            raise ValueError("a critic with its own observation space needs shared_trunk=False")
        if "node_head" in (encoder_kwargs or {}):
            raise TypeError("node_head is an argument of ActorCritic, not an encoder option "
                            "(PPOConfig.encoder_kwargs['node_head'] is passed as node_head)")

        def trunk(space: gym.Space) -> tuple[nn.Module, MemoryCore]:
            core_ = make_core(core, hidden_size, hidden_size, **(core_kwargs or {}))
            for module in core_.modules():
                if isinstance(module, nn.Linear):
                    _init(module, math.sqrt(2))
            return make_encoder(space, hidden_size, encoder_kwargs), core_

        self.encoder, self.core = trunk(observation_space)
        self.communication = None
        if communication:
            from graphs.communication import AgentCommunication

            self.communication = AgentCommunication(hidden_size, **communication)
        self.critic_encoder, self.critic_core = (None, None) if shared_trunk else trunk(
            critic_observation_space or observation_space
        )
        self.critic_observation_space = critic_observation_space
        #: The action is a node slot, scored per node by :class:`NodeHead`.
        self.node_head = self._wants_node_head(observation_space, action_space, node_head)
        if self.node_head and thompson_policy:
            raise ValueError("thompson_policy needs a Discrete, MultiDiscrete, MultiBinary or "
                             "Box action head (not the node head of graph tasks)")
        if self.node_head:
            self.actor = NodeHead(self.encoder.gnn.out_features, self.core.output_size,
                                  action_space)
        else:
            self.actor = make_action_head(self.core.output_size, action_space, thompson_policy)
        #: The Bayesian last layer of a Thompson-sampling policy head, else None.
        self.thompson = self._thompson_layer() if thompson_policy else None
        self.bayesian_value = value_head == "bayes"
        if self.bayesian_value:
            from agents.bayesian import BayesianValueHead

            self.critic = BayesianValueHead(self.core.output_size)
        else:
            self.critic = _init(nn.Linear(self.core.output_size, 1), 1.0)
        self._check_action_mask(observation_space)

    def _wants_node_head(self, observation_space: gym.Space, action_space: gym.Space,
                         node_head: bool | None) -> bool:
        """Whether the action head is a :class:`NodeHead` (see the ``node_head`` argument)."""
        if node_head is not None and not isinstance(node_head, bool):
            raise TypeError(f"node_head must be true, false or None, got {node_head!r}")
        gnn = isinstance(self.encoder, GraphObsEncoder)
        if node_head:
            problem = node_head_problem(observation_space, action_space)
            if problem is None and not gnn:
                problem = "the graph is encoded by the flat MLP (model='flat'), not a GNN"
            if problem is not None:
                raise ValueError(f"node_head=True needs a graph observation encoded by a GNN and "
                                 f"a Discrete(n) action naming a node slot: {problem}")
        if node_head is None:
            return wants_node_head(observation_space, action_space) and gnn
        return node_head

    def _thompson_layer(self) -> nn.Module:
        """The action head's Bayesian last layer."""
        return self.actor.mean if isinstance(self.actor, GaussianHead) else self.actor.linear

    def _check_action_mask(self, observation_space: gym.Space) -> None:
        """``ValueError`` unless a Dict observation's ``action_mask`` has one entry per action
        value of a multi-dimensional or node head (where a wrong width would mis-mask silently).
        """
        if not isinstance(observation_space, gym.spaces.Dict) or \
                ACTION_MASK not in observation_space.spaces:
            return
        if isinstance(self.actor, MultiCategoricalHead):
            width, what = self.actor.num_logits, ("the per-dimension masks concatenated, as "
                                                  "sb3-contrib's MaskablePPO")
        elif self.node_head:
            width, what = self.actor.num_nodes, "one per scored node slot"
        else:
            return
        got = int(np.prod(observation_space[ACTION_MASK].shape))
        if got != width:
            raise ValueError(f"the observation's action_mask has {got} entries, the action head "
                             f"needs {width} ({what})")

    def action_mask(self, obs: Any) -> torch.Tensor | None:
        """Valid actions of ``obs`` (bool, ``[..., n]``), or None: its ``action_mask`` entry;
        for a node head without one, the scored slots' ``node_mask`` (padding is not a node)."""
        mask = action_mask(obs)
        if mask is None and self.node_head:
            mask = obs["node_mask"][..., : self.actor.num_nodes].bool()
        return mask

    def initial_state(self, batch: int) -> PolicyState:
        device = next(self.parameters()).device
        critic = () if self.critic_core is None else self.critic_core.initial_state(batch, device)
        return PolicyState(self.core.initial_state(batch, device), critic)

    # ------------------------------------------------------------------ the forward passes
    def _actor_features(self, obs: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Encoder, then (multi-agent) communication, which reads the raw observation (the
        agents' positions): the actor core's input ``[T, B, D]``, and the node embeddings
        ``[T, B, N_max, H]`` that travel beside the core to a node head (None without one)."""
        nodes = None
        if getattr(self.communication, "precomputed", False):
            # agents.groups: the messages were passed over every group's encoder already.
            return self.communication(None, obs), None
        if self.node_head:
            nodes, features = self.encoder.embed(obs)
        else:
            features = self.encoder(obs)
        if self.communication is not None:
            features = self.communication(features, obs)
        return features, nodes

    def _head_input(self, y: torch.Tensor, nodes: torch.Tensor | None) -> torch.Tensor:
        """The action head's input: the core's output ``y`` ``[T, B, D]``, or with a node head
        each scored node's embedding beside it, ``[T, B, n, H + D]``."""
        if nodes is None:
            return y
        nodes = nodes[..., : self.actor.num_nodes, :]
        return torch.cat((nodes, y.unsqueeze(-2).expand(*nodes.shape[:-1], y.shape[-1])), -1)

    def _actor(
        self, obs: Any, state: PolicyState, episode_start: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, State]:
        """The action head's input (:meth:`_head_input`), the actor core's output ``[T, B, D]``
        and its new state."""
        features, nodes = self._actor_features(obs)
        y, actor_state = self.core(features, state.actor, episode_start)
        return self._head_input(y, nodes), y, actor_state

    def _critic(
        self, obs: Any, state: PolicyState, episode_start: torch.Tensor,
        critic_obs: torch.Tensor | None,
    ) -> tuple[torch.Tensor, State]:
        """The critic core's output ``[T, B, D]`` and its new state (own trunk only)."""
        return self.critic_core(self.critic_encoder(obs if critic_obs is None else critic_obs),
                                state.critic, episode_start)

    def _trunks(
        self, obs: Any, state: PolicyState, episode_start: torch.Tensor,
        critic_obs: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, PolicyState]:
        """The action head's input, the critic's features ``[T, B, D]`` and the new state."""
        head_input, y, actor_state = self._actor(obs, state, episode_start)
        if self.critic_core is None:
            return head_input, y, PolicyState(actor_state)
        y_critic, critic_state = self._critic(obs, state, episode_start, critic_obs)
        return head_input, y_critic, PolicyState(actor_state, critic_state)

    def _value(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Value ``[...]`` of critic features ``[..., D]`` and, for a Bayesian value head, its
        epistemic variance ``[...]`` (in the autograd graph), else None."""
        if not self.bayesian_value:
            return self.critic(features).squeeze(-1), None
        mean, var = self.critic(features)
        return mean.squeeze(-1), var.squeeze(-1)

    def _policy_noise(
        self, previous: torch.Tensor | None, episode_start: torch.Tensor
    ) -> torch.Tensor | None:
        """A Thompson head's weight sample per copy: fresh where an episode starts."""
        if self.thompson is None:
            return None
        fresh = self.thompson.sample_noise(episode_start.shape[0])
        return fresh if previous is None else torch.where(episode_start[:, None], fresh, previous)

    def act(
        self, obs: Any, state: PolicyState, episode_start: torch.Tensor,
        critic_obs: torch.Tensor | None = None, policy_noise: torch.Tensor | None = None,
    ) -> ActStep:
        """Sample one step for a batch ``obs`` ``[B, ...]``.

        Args:
            obs: The observations.
            state: The state after the previous step (:meth:`initial_state` at the start).
            episode_start: ``[B]`` bool: ``obs`` starts an episode (the cores reset there).
            critic_obs: A centralised critic's input ``[B, ...]``.
            policy_noise: The previous step's ``inputs["policy_noise"]`` (Thompson head).
        """
        noise = self._policy_noise(policy_noise, episode_start)
        head_input, features, state = self._trunks(
            tree_map(unsqueeze0, obs), state, episode_start.unsqueeze(0),
            None if critic_obs is None else critic_obs.unsqueeze(0),
        )
        action, logprob = self.actor.sample(head_input[0], self.action_mask(obs), noise)
        value, var = self._value(features[0])
        inputs = {}
        if self.critic_observation_space is not None:
            inputs["critic_obs"] = critic_obs
        if noise is not None:
            inputs["policy_noise"] = noise
        if var is None:
            return ActStep(action, logprob, value, state, inputs)
        return ActStep(action, logprob, value, state, inputs, var.sqrt(), features[0])

    def value(
        self, obs: Any, state: PolicyState, episode_start: torch.Tensor,
        critic_obs: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Value of a sequence: ``obs`` ``[T, B, ...]`` -> ``[T, B]``."""
        return self.value_and_std(obs, state, episode_start, critic_obs)[0]

    def value_and_std(
        self, obs: Any, state: PolicyState, episode_start: torch.Tensor,
        critic_obs: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Value of a sequence ``[T, B]`` and its epistemic std (Bayesian value head, else None)."""
        if self.critic_core is None:
            _, features, _ = self._actor(obs, state, episode_start)
        else:
            features, _ = self._critic(obs, state, episode_start, critic_obs)
        value, var = self._value(features)
        return value, None if var is None else var.sqrt()

    def evaluate(
        self, obs: Any, action: torch.Tensor, state: PolicyState, episode_start: torch.Tensor,
        inputs: dict[str, torch.Tensor] | None = None, num_data: int = 1,
    ) -> Evaluation:
        """Log-probability, entropy and value of stored sequences, each ``[T, B]``.

        Args:
            obs, action, episode_start: Stored sequences ``[T, B, ...]``.
            state: The state at the sequences' starts.
            inputs: The stored :attr:`ActStep.inputs` ``[T, B, ...]`` by name.
            num_data: Samples per rollout, which weigh the Bayesian heads' KL terms.
        """
        inputs = inputs or {}
        noise = inputs.get("policy_noise")
        head_input, features, _ = self._trunks(obs, state, episode_start, inputs.get("critic_obs"))
        logprob, entropy = self.actor.evaluate(head_input, action, self.action_mask(obs), noise)
        value, var = self._value(features)
        policy_penalty = value_penalty = 0.0
        if self.thompson is not None:
            policy_penalty = self.thompson.kl_divergence() / num_data
        if var is not None:
            value_penalty = self.critic.elbo_penalty(var, num_data)
        return Evaluation(logprob, entropy, value, policy_penalty, value_penalty)

    @torch.no_grad()
    def predict(
        self, obs: Any, state: PolicyState | None = None,
        episode_start: torch.Tensor | None = None, deterministic: bool = True,
    ) -> tuple[torch.Tensor, PolicyState]:
        """Actions for a batch ``obs`` ``[B, ...]`` (the mode when ``deterministic``; a Thompson
        head acts with its posterior mean)."""
        first = next(iter(obs.values())) if isinstance(obs, dict) else obs
        if episode_start is None:
            episode_start = torch.zeros(first.shape[0], dtype=torch.bool, device=first.device)
        if state is None:
            state = self.initial_state(first.shape[0])
        # Acting needs the actor's trunk only; the critic's state is passed through.
        head_input, _, actor_state = self._actor(tree_map(unsqueeze0, obs), state,
                                                 episode_start.unsqueeze(0))
        mask = self.action_mask(obs)
        y = head_input[0]
        action = self.actor.mode(y, mask) if deterministic else self.actor.sample(y, mask)[0]
        return action, PolicyState(actor_state, state.critic)
