"""``ActorCritic`` = observation encoder -> memory core -> action head and value head.

The policy is composed, never subclassed per variant (DESIGN.md contract 2): the encoder is chosen
from the observation space, the core by name from :data:`agents.memory.CORES`, the action head from
the action space. Every method takes time-major sequences ``[T, B, ...]``; the rollout uses
``T = 1``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents.memory import MemoryCore, State, make_core

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
        _, graph = self.gnn({k: v for k, v in obs.items() if k in GRAPH_KEYS})
        return self.net(graph)


#: The keys of a padded graph observation (``edge_attr`` is optional).
GRAPH_KEYS = ("x", "edge_index", "node_mask", "edge_mask", "edge_attr")


def is_graph_space(space: gym.Space) -> bool:
    """A Dict space holding the padded graph form."""
    return isinstance(space, gym.spaces.Dict) and all(
        key in space.spaces for key in GRAPH_KEYS[:4]
    )


def make_encoder(
    observation_space: gym.Space, hidden_size: int, encoder_kwargs: dict | None = None
) -> nn.Module:
    """The encoder for an observation space (DESIGN.md contract 2): padded graphs -> GNN,
    other Dicts -> concatenation + MLP, vectors -> MLP. ``encoder_kwargs`` go to the GNN."""
    if is_graph_space(observation_space):
        return GraphObsEncoder(observation_space, hidden_size, **(encoder_kwargs or {}))
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

    def _log_probs(self, y: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        logits = self.linear(y)
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
    if isinstance(space, gym.spaces.Discrete):
        return CategoricalHead(in_features, space)
    if isinstance(space, gym.spaces.Box):
        return GaussianHead(in_features, space)
    raise TypeError(f"no action head for {space}: expected Discrete or Box")


class AgentCommunication(nn.Module):
    """Message passing between the agents of each copy, in the policy's communication slot.

    Rows are agents folded into the batch (:class:`agents.multiagent.AgentBatch`: copy ``n``'s
    agent ``a`` is row ``n * num_agents + a``). The agents of a copy form a complete graph; a PyG
    GNN (``graphs.GraphEncoder``) passes messages over it, and each agent's features become
    ``x + GNN(x)`` (a residual, so no communication is the starting point).

    Args:
        hidden_size: Feature width (in and out).
        num_agents: Agents per copy.
        model, num_layers: See ``graphs.GraphEncoder``.

    Shapes:
        ``[T, N * num_agents, hidden_size]`` -> same.
    """

    def __init__(self, hidden_size: int, num_agents: int, model: str = "gcn",
                 num_layers: int = 2):
        super().__init__()
        from graphs import GraphEncoder

        if num_agents < 2:
            raise ValueError(f"communication needs at least 2 agents, got {num_agents}")
        self.num_agents = num_agents
        self.gnn = GraphEncoder(hidden_size, hidden_size, num_layers, model, validate=False)
        src, dst = torch.meshgrid(torch.arange(num_agents), torch.arange(num_agents),
                                  indexing="ij")
        keep = src != dst
        self.register_buffer("edges", torch.stack((src[keep], dst[keep])), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length, rows, width = x.shape
        copies, agents = rows // self.num_agents, self.num_agents
        nodes = x.reshape(length, copies, agents, width)
        edges = self.edges.expand(length, copies, 2, -1)
        graph = {
            "x": nodes,
            "edge_index": edges,
            "node_mask": torch.ones(length, copies, agents, dtype=torch.bool, device=x.device),
            "edge_mask": torch.ones(length, copies, edges.shape[-1], dtype=torch.bool,
                                    device=x.device),
        }
        messages, _ = self.gnn(graph)
        return x + messages.reshape(length, rows, width)


class ActorCritic(nn.Module):
    """Encoder -> memory core -> (action head, value head), for one agent or many sharing weights.

    Args:
        observation_space: Single-copy observation space.
        action_space: Single-copy action space (Discrete or Box).
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
        encoder_kwargs: Options of the graph encoder (``model``, ``num_layers``, ``readout``).
        communication: Multi-agent only: ``{"num_agents": A, "model": ..., "num_layers": ...}``
            adds :class:`AgentCommunication` between the actor's encoder and core.

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
    ):
        super().__init__()
        if shared_trunk and critic_observation_space is not None:
            raise ValueError("a critic with its own observation space needs shared_trunk=False")

        def trunk(space: gym.Space) -> tuple[VectorEncoder, MemoryCore]:
            core_ = make_core(core, hidden_size, hidden_size, **(core_kwargs or {}))
            for module in core_.modules():
                if isinstance(module, nn.Linear):
                    _init(module, math.sqrt(2))
            return make_encoder(space, hidden_size, encoder_kwargs), core_

        self.encoder, self.core = trunk(observation_space)
        self.communication = (
            AgentCommunication(hidden_size, **communication) if communication else None
        )
        self.critic_encoder, self.critic_core = (None, None) if shared_trunk else trunk(
            critic_observation_space or observation_space
        )
        self.actor = make_action_head(self.core.output_size, action_space)
        self.critic = _init(nn.Linear(self.core.output_size, 1), 1.0)

    def initial_state(self, batch: int) -> State:
        device = next(self.parameters()).device
        state = self.core.initial_state(batch, device)
        if self.critic_core is not None:
            state = state + self.critic_core.initial_state(batch, device)
        return state

    def _actor_features(self, obs: Any) -> torch.Tensor:
        """Encoder, then (multi-agent) communication: the actor core's input."""
        features = self.encoder(obs)
        return features if self.communication is None else self.communication(features)

    def _trunks(
        self, obs: torch.Tensor, state: State, episode_start: torch.Tensor,
        critic_obs: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, State]:
        """Actor features, critic features (both ``[T, B, D]``) and the new state."""
        if self.critic_core is None:
            y, state = self.core(self._actor_features(obs), state, episode_start)
            return y, y, state
        split = len(state) // 2
        y, actor_state = self.core(self._actor_features(obs), state[:split], episode_start)
        y_critic, critic_state = self.critic_core(
            self.critic_encoder(obs if critic_obs is None else critic_obs), state[split:],
            episode_start,
        )
        return y, y_critic, actor_state + critic_state

    def act(
        self, obs: torch.Tensor, state: State, episode_start: torch.Tensor,
        critic_obs: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, State]:
        """Sample one step. ``obs`` ``[B, ...]`` -> ``(action, logprob [B], value [B], state)``."""
        y, y_critic, state = self._trunks(
            tree_map(unsqueeze0, obs), state, episode_start.unsqueeze(0),
            None if critic_obs is None else critic_obs.unsqueeze(0),
        )
        action, logprob = self.actor.sample(y[0], action_mask(obs))
        return action, logprob, self.critic(y_critic[0]).squeeze(-1), state

    def value(
        self, obs: torch.Tensor, state: State, episode_start: torch.Tensor,
        critic_obs: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Value of a sequence: ``obs`` ``[T, B, ...]`` -> ``[T, B]``."""
        if self.critic_core is None:
            y, _ = self.core(self.encoder(obs), state, episode_start)
        else:
            critic_state = state[len(state) // 2 :]
            critic_in = obs if critic_obs is None else critic_obs
            y, _ = self.critic_core(self.critic_encoder(critic_in), critic_state, episode_start)
        return self.critic(y).squeeze(-1)

    def evaluate(
        self, obs: torch.Tensor, action: torch.Tensor, state: State, episode_start: torch.Tensor,
        critic_obs: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log-probability, entropy and value of stored sequences, each ``[T, B]``."""
        y, y_critic, _ = self._trunks(obs, state, episode_start, critic_obs)
        logprob, entropy = self.actor.evaluate(y, action, action_mask(obs))
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
        y, actor_state = self.core(self._actor_features(tree_map(unsqueeze0, obs)),
                                   state[:split], episode_start.unsqueeze(0))
        state = actor_state + state[split:]
        mask = action_mask(obs)
        action = self.actor.mode(y[0], mask) if deterministic else self.actor.sample(y[0], mask)[0]
        return action, state
