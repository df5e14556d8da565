"""``ActorCritic`` = observation encoder -> memory core -> action head and value head.

The policy is composed, never subclassed per variant (DESIGN.md contract 2): the encoder is chosen
from the observation space, the core by name from :data:`agents.memory.CORES`, the action head from
the action space. Every method takes time-major sequences ``[T, B, ...]``; the rollout uses
``T = 1``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

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
    """Flatten a Box (or one-hot a Discrete) observation, then ``Linear -> tanh``.

    Shapes:
        ``obs`` ``[T, B, *obs_shape]`` -> ``[T, B, hidden_size]``.
    """

    def __init__(self, observation_space: gym.Space, hidden_size: int):
        super().__init__()
        if isinstance(observation_space, gym.spaces.Discrete):
            self.one_hot = int(observation_space.n)
            in_features = self.one_hot
        elif isinstance(observation_space, gym.spaces.Box):
            self.one_hot = 0
            in_features = int(np.prod(observation_space.shape))
        else:
            raise TypeError(
                f"no encoder for observation space {observation_space}: expected a Box or Discrete "
                "(Dict, grid and graph encoders come with their issues)"
            )
        self.out_features = hidden_size
        self.net = nn.Sequential(
            _init(nn.Linear(in_features, hidden_size), math.sqrt(2)), nn.Tanh()
        )

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.one_hot:
            x = nn.functional.one_hot(obs.long(), self.one_hot).float()
        else:
            x = obs.flatten(2).float()
        return self.net(x)


class DictEncoder(nn.Module):
    """Concatenate the flattened entries of a Dict observation (``action_mask`` excluded), then
    ``Linear -> tanh``.

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
            elif isinstance(sub, gym.spaces.Box):
                widths.append(int(np.prod(sub.shape)))
            else:
                raise TypeError(f"no encoder for Dict entry {key!r}: {sub} (expected Box or "
                                "Discrete)")
        self.one_hot = {k: int(observation_space[k].n) for k in self.keys
                        if isinstance(observation_space[k], gym.spaces.Discrete)}
        self.out_features = hidden_size
        self.net = nn.Sequential(_init(nn.Linear(sum(widths), hidden_size), math.sqrt(2)),
                                 nn.Tanh())

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = []
        for key in self.keys:
            value = obs[key]
            if key in self.one_hot:
                parts.append(nn.functional.one_hot(value.long(), self.one_hot[key]).float())
            else:
                parts.append(value.flatten(2).float())
        return self.net(torch.cat(parts, dim=-1))


class GraphObsEncoder(nn.Module):
    """Padded graph observations (DESIGN.md contract 1) -> a graph embedding, by a PyG GNN.

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
    """The encoder for an observation space (DESIGN.md contract 2): padded graphs -> GNN,
    other Dicts -> concatenation + MLP, vectors -> MLP. ``encoder_kwargs`` go to the GNN;
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


def action_mask(obs: Any) -> torch.Tensor | None:
    """The ``action_mask`` entry of a Dict observation as bool (PettingZoo's convention)."""
    if isinstance(obs, dict) and ACTION_MASK in obs:
        return obs[ACTION_MASK].bool()
    return None


class CategoricalHead(nn.Module):
    """Categorical policy over ``Discrete(n)``: ``logits = W y``, actions ``start .. start+n-1``."""

    def __init__(self, in_features: int, space: gym.spaces.Discrete):
        super().__init__()
        self.start = int(space.start)
        self.linear = _init(nn.Linear(in_features, int(space.n)), 0.01)

    def logits(self, y: torch.Tensor) -> torch.Tensor:
        """``[..., in_features]`` -> ``[..., n]``."""
        return self.linear(y)

    def _log_probs(self, y: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        logits = self.logits(y)
        if mask is not None:  # invalid actions get probability 0
            logits = logits.masked_fill(~mask, -1e8)
        return torch.log_softmax(logits, dim=-1)

    def sample(
        self, y: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logp = self._log_probs(y, mask)
        # Gumbel-max: one kernel chain, no torch.distributions overhead in the hot loop.
        gumbel = -torch.log(-torch.log(torch.rand_like(logp).clamp_(1e-20, 1.0)))
        index = (logp + gumbel).argmax(dim=-1)
        return index + self.start, logp.gather(-1, index.unsqueeze(-1)).squeeze(-1)

    def evaluate(
        self, y: torch.Tensor, action: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logp = self._log_probs(y, mask)
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

    def logits(self, y: torch.Tensor) -> torch.Tensor:
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

    def __init__(self, in_features: int, space: gym.spaces.MultiDiscrete | gym.spaces.MultiBinary):
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
        self.linear = _init(nn.Linear(in_features, self.num_logits), 0.01)

    def _log_probs(self, y: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``[..., d, K]`` log-probabilities, dimension by dimension."""
        logits = self.linear(y)[..., self.index]
        if mask is not None:  # invalid values get probability 0
            logits = logits.masked_fill(~mask[..., self.index], -1e8)
        return torch.log_softmax(logits.masked_fill(~self.valid, self._PAD), dim=-1)

    def _to_action(self, index: torch.Tensor) -> torch.Tensor:
        return (index + self.start).unflatten(-1, self.shape).to(self.dtype)

    def sample(
        self, y: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logp = self._log_probs(y, mask)
        gumbel = -torch.log(-torch.log(torch.rand_like(logp).clamp_(1e-20, 1.0)))
        index = (logp + gumbel).argmax(dim=-1)
        logprob = logp.gather(-1, index.unsqueeze(-1)).squeeze(-1).sum(-1)
        return self._to_action(index), logprob

    def evaluate(
        self, y: torch.Tensor, action: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logp = self._log_probs(y, mask)
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

    def __init__(self, in_features: int, space: gym.spaces.Box, log_std_init: float = 0.0):
        super().__init__()
        self.shape = space.shape
        dim = int(np.prod(space.shape))
        self.mean = _init(nn.Linear(in_features, dim), 0.01)
        self.log_std = nn.Parameter(torch.full((dim,), float(log_std_init)))

    def _log_prob(self, mean: torch.Tensor, flat_action: torch.Tensor) -> torch.Tensor:
        z = (flat_action - mean) * torch.exp(-self.log_std)
        return (-0.5 * z.square() - self.log_std - 0.5 * math.log(2 * math.pi)).sum(-1)

    def sample(
        self, y: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.mean(y)
        flat = mean + torch.randn_like(mean) * self.log_std.exp()
        return flat.unflatten(-1, self.shape), self._log_prob(mean, flat)

    def evaluate(
        self, y: torch.Tensor, action: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.mean(y)
        logp = self._log_prob(mean, action.flatten(y.dim() - 1).float())
        entropy = (0.5 + 0.5 * math.log(2 * math.pi) + self.log_std).sum().expand_as(logp)
        return logp, entropy

    def mode(self, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.mean(y).unflatten(-1, self.shape)


def make_action_head(in_features: int, space: gym.Space) -> nn.Module:
    """The action head for ``space``: categorical (Discrete), one categorical per dimension
    (MultiDiscrete, MultiBinary) or diagonal Gaussian (Box)."""
    if isinstance(space, gym.spaces.Discrete):
        return CategoricalHead(in_features, space)
    if isinstance(space, (gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)):
        return MultiCategoricalHead(in_features, space)
    if isinstance(space, gym.spaces.Box):
        return GaussianHead(in_features, space)
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
            value-loss gradients do not shape the policy's features; the state then holds both
            cores' states, the actor's first.
        critic_observation_space: What the value head sees when it is not the observation (the
            global state of a multi-agent task: MAPPO's centralised critic); needs
            ``shared_trunk=False``. Methods then take ``critic_obs`` beside ``obs``.
        encoder_kwargs: Options of the graph encoder (``model``, ``num_layers``, ``readout``);
            ``model="flat"`` encodes a graph as a plain Dict (an MLP over the flattened padding).
            ``node_head`` (bool) picks the action head of a graph task whose action is a node
            slot: :class:`NodeHead`, one logit per node from its GNN embedding and the core's
            output, or, when false, a :class:`CategoricalHead` on the core's output alone.
            Unset, it is on where the action is ``Discrete(N_max)`` (see
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
            epistemic std is ``self.critic.last_std`` after each call).
        thompson_policy: Make the action head's last layer Bayesian
            (:class:`agents.bayesian.ThompsonLinear`): one weight sample per episode, given as
            ``policy_noise`` to :meth:`act` and :meth:`evaluate` (the rollout draws and stores it).

    Shapes:
        ``obs`` ``[T, B, *obs_shape]``, ``episode_start`` ``[T, B]``, ``action`` ``[T, B,
        *action_shape]``; log-probabilities, entropies and values ``[T, B]``.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        core: str = "mlp",
        hidden_size: int = 64,
        core_kwargs: dict | None = None,
        shared_trunk: bool = False,
        critic_observation_space: gym.Space | None = None,
        encoder_kwargs: dict | None = None,
        communication: dict | None = None,
        value_head: str = "linear",
        thompson_policy: bool = False,
    ):
        super().__init__()
        if value_head not in VALUE_HEADS:
            raise ValueError(f"value_head must be one of {VALUE_HEADS}, got {value_head!r}")
        if shared_trunk and critic_observation_space is not None:
            raise ValueError("a critic with its own observation space needs shared_trunk=False")

        def trunk(space: gym.Space) -> tuple[VectorEncoder, MemoryCore]:
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
        node_head = (encoder_kwargs or {}).get("node_head")
        if node_head is not None and not isinstance(node_head, bool):
            raise TypeError(f"encoder_kwargs['node_head'] must be true or false, got "
                            f"{node_head!r}")
        gnn = isinstance(self.encoder, GraphObsEncoder)
        if node_head:
            problem = node_head_problem(observation_space, action_space)
            if problem is None and not gnn:
                problem = "the graph is encoded by the flat MLP (model='flat'), not a GNN"
            if problem is not None:
                raise ValueError(f"node_head=True needs a graph observation encoded by a GNN and "
                                 f"a Discrete(n) action naming a node slot: {problem}")
        #: The action is a node slot, scored per node by :class:`NodeHead`.
        self.node_head = (
            wants_node_head(observation_space, action_space) and gnn
            if node_head is None else node_head
        )
        if self.node_head:
            self.actor = NodeHead(self.encoder.gnn.out_features, self.core.output_size,
                                  action_space)
        else:
            self.actor = make_action_head(self.core.output_size, action_space)
        #: The Bayesian last layer of a Thompson-sampling policy head, else None.
        self.thompson = None
        if thompson_policy:
            from agents.bayesian import ThompsonLinear

            if isinstance(self.actor, (CategoricalHead, MultiCategoricalHead)) and \
                    not self.node_head:
                self.actor.linear = self.thompson = ThompsonLinear(self.actor.linear)
            elif isinstance(self.actor, GaussianHead):
                self.actor.mean = self.thompson = ThompsonLinear(self.actor.mean)
            else:
                raise ValueError("thompson_policy needs a Discrete, MultiDiscrete, MultiBinary or "
                                 "Box action head (not the node head of graph tasks)")
        if value_head == "bayes":
            from agents.bayesian import BayesianValueHead

            self.critic = BayesianValueHead(self.core.output_size)
        else:
            self.critic = _init(nn.Linear(self.core.output_size, 1), 1.0)
        self.bayesian_value = value_head == "bayes"
        self._check_action_mask(observation_space)

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

    def initial_state(self, batch: int) -> State:
        device = next(self.parameters()).device
        state = self.core.initial_state(batch, device)
        if self.critic_core is not None:
            state = state + self.critic_core.initial_state(batch, device)
        return state

    def _actor_features(self, obs: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Encoder, then (multi-agent) communication, which reads the raw observation (the
        agents' positions): the actor core's input ``[T, B, D]``, and the node embeddings
        ``[T, B, N_max, H]`` that travel beside the core to a node head (None without one)."""
        nodes = None
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

    def _trunks(
        self, obs: torch.Tensor, state: State, episode_start: torch.Tensor,
        critic_obs: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, State]:
        """The action head's input (:meth:`_head_input`), the critic's features ``[T, B, D]``
        and the new state."""
        features, nodes = self._actor_features(obs)
        if self.critic_core is None:
            y, state = self.core(features, state, episode_start)
            return self._head_input(y, nodes), y, state
        split = len(state) // 2
        y, actor_state = self.core(features, state[:split], episode_start)
        y_critic, critic_state = self.critic_core(
            self.critic_encoder(obs if critic_obs is None else critic_obs), state[split:],
            episode_start,
        )
        return self._head_input(y, nodes), y_critic, actor_state + critic_state

    def act(
        self, obs: torch.Tensor, state: State, episode_start: torch.Tensor,
        critic_obs: torch.Tensor | None = None, policy_noise: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, State]:
        """Sample one step. ``obs`` ``[B, ...]`` -> ``(action, logprob [B], value [B], state)``."""
        y, y_critic, state = self._trunks(
            tree_map(unsqueeze0, obs), state, episode_start.unsqueeze(0),
            None if critic_obs is None else critic_obs.unsqueeze(0),
        )
        with self._policy_noise(policy_noise):
            action, logprob = self.actor.sample(y[0], self.action_mask(obs))
        return action, logprob, self.critic(y_critic[0]).squeeze(-1), state

    @contextlib.contextmanager
    def _policy_noise(self, noise: torch.Tensor | None) -> Iterator[None]:
        """Act with the weight sample ``noise`` of a Thompson head (posterior mean if None)."""
        if self.thompson is None:
            yield
            return
        self.thompson.noise = noise
        try:
            yield
        finally:
            self.thompson.noise = None

    def value(
        self, obs: torch.Tensor, state: State, episode_start: torch.Tensor,
        critic_obs: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Value of a sequence: ``obs`` ``[T, B, ...]`` -> ``[T, B]``."""
        if self.critic_core is None:
            y, _ = self.core(self._actor_features(obs)[0], state, episode_start)
        else:
            critic_state = state[len(state) // 2 :]
            critic_in = obs if critic_obs is None else critic_obs
            y, _ = self.critic_core(self.critic_encoder(critic_in), critic_state, episode_start)
        return self.critic(y).squeeze(-1)

    def evaluate(
        self, obs: torch.Tensor, action: torch.Tensor, state: State, episode_start: torch.Tensor,
        critic_obs: torch.Tensor | None = None, policy_noise: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log-probability, entropy and value of stored sequences, each ``[T, B]``."""
        y, y_critic, _ = self._trunks(obs, state, episode_start, critic_obs)
        with self._policy_noise(policy_noise):
            logprob, entropy = self.actor.evaluate(y, action, self.action_mask(obs))
        return logprob, entropy, self.critic(y_critic).squeeze(-1)

    @torch.no_grad()
    def predict(
        self, obs: torch.Tensor, state: State = (), episode_start: torch.Tensor | None = None,
        deterministic: bool = True,
    ) -> tuple[torch.Tensor, State]:
        """Actions for a batch ``obs`` ``[B, ...]`` (the mode when ``deterministic``)."""
        first = next(iter(obs.values())) if isinstance(obs, dict) else obs
        if episode_start is None:
            episode_start = torch.zeros(first.shape[0], dtype=torch.bool, device=first.device)
        if not state:
            state = self.initial_state(first.shape[0])
        # Acting needs the actor's trunk only; the critic's part of the state is passed through.
        split = len(state) // 2 if self.critic_core is not None else len(state)
        features, nodes = self._actor_features(tree_map(unsqueeze0, obs))
        y, actor_state = self.core(features, state[:split], episode_start.unsqueeze(0))
        y = self._head_input(y, nodes)
        state = actor_state + state[split:]
        mask = self.action_mask(obs)
        action = self.actor.mode(y[0], mask) if deterministic else self.actor.sample(y[0], mask)[0]
        return action, state
