"""VMAS scenarios as Umbra multi-agent batched environments: ``envs.make("vmas:navigation")``.

VMAS (the Vectorized Multi-Agent Simulator, https://github.com/proroklab/VectorizedMultiAgentSimulator)
steps its copies as torch tensors, like Umbra's native environments, so
:class:`VmasToBatched` keeps everything on the environment's device: no numpy, no per-copy
Python loop in ``step`` except for the autoreset that VMAS forces (see the class docstring).

The only module of ``envs`` that imports VMAS (an optional extra: ``pip install -e ".[vmas]"``).
"""

from __future__ import annotations

import difflib
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from envs.core import (
    MultiAgentBatchedEnv,
    Obs,
    check_int,
    check_num_envs,
    check_seed,
    resolve_device,
)
from envs.interop.agent_padding import ActionPadding, ObservationPadding

try:
    import vmas
    from vmas.simulator.scenario import BaseScenario
except ImportError as err:  # pragma: no cover - depends on the installation
    raise ImportError(
        'VMAS scenarios ("vmas:<scenario>" ids) need the vmas package: pip install -e ".[vmas]" '
        f"(or pip install vmas); importing it failed: {err}"
    ) from err

__all__ = ["VMAS_PREFIX", "VmasToBatched", "scenario_names"]

#: The prefix of ``envs.make`` ids that name a VMAS scenario, as in ``"vmas:navigation"``.
VMAS_PREFIX = "vmas:"

#: Scenarios whose ``observation()`` starts, for every agent and whatever the scenario's
#: keyword arguments, with the agent's own position ``agent.state.pos`` (x, y), checked by
#: reading each scenario's source (vmas 1.5.2) and by tests/envs/test_vmas.py. Scenarios left out
#: start with something else (football, road_traffic, most of MPE), start with it only for some
#: keyword arguments (wind_flocking: ``observe_pos``) or add noise to it (circle_trajectory,
#: line_trajectory: ``obs_noise``).
POSITION_FIRST_SCENARIOS = frozenset({
    "balance", "ball_passage", "ball_trajectory", "buzz_wire", "discovery", "dispersion",
    "dropout", "flocking", "give_way", "joint_passage", "joint_passage_size", "multi_give_way",
    "navigation", "passage", "reverse_transport", "sampling", "transport", "wheel",
    "simple_spread", "diff_drive", "drone", "goal", "het_mass", "kinematic_bicycle",
    "vel_control", "waterfall",
})


def scenario_names() -> list[str]:
    """Every scenario name that ``vmas:<name>`` accepts (VMAS's main, MPE and debug scenarios)."""
    return sorted({*vmas.scenarios, *vmas.mpe_scenarios, *vmas.debug_scenarios})


def _check_scenario(scenario: Any) -> str | BaseScenario:
    if isinstance(scenario, BaseScenario):
        return scenario
    if not isinstance(scenario, str):
        raise TypeError(f"scenario must be a VMAS scenario name or BaseScenario, got {scenario!r}")
    name = scenario.removesuffix(".py")
    known = scenario_names()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"unknown VMAS scenario {name!r}.{hint} Known scenarios: {', '.join(known)}"
        )
    return name


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return value


class VmasToBatched(MultiAgentBatchedEnv):
    """A VMAS scenario as a multi-agent batched environment, on the same device.

    ``envs.make("vmas:<scenario>", num_envs=N, device=..., **kwargs)`` builds it; the keyword
    arguments below are the adapter's and every other one goes to the scenario (VMAS's
    ``make_env(..., **scenario_kwargs)``, e.g. ``n_agents=3``; one that the scenario does not use
    is a ``TypeError``, where VMAS itself only warns). Everything of
    :class:`~envs.core.MultiAgentBatchedEnv` holds: tensors on ``device``, SAME_STEP autoreset
    with ``info["final_obs"]``/``_final_obs``, ``state`` and ``final_state``, episode statistics
    counted by the base class's bookkeeping.

    Agents:
        ``possible_agents`` are VMAS's agent names (``agent.name``: ``"agent_0"``, ...,
        ``"speaker_0"``, ``"adversary_0"``), in VMAS's order; Umbra relies only on their order
        and uniqueness (a scenario with repeated names gets ``"agent_<i>"``). VMAS agents do not
        die: ``info["agent_mask"]`` is all true. ``agent_observation_spaces`` (each agent's
        flattened float32 Box) and ``agent_action_spaces`` (VMAS's spaces as gymnasium ones) are
        each agent's own; ``groups`` and ``group_index`` the agents with identical spaces
        (docs/architecture.md, "Heterogeneous agents"; padded by
        :mod:`envs.interop.agent_padding`, as every adapter pads).

    Observation Space:
        A flat float32 ``Box(-inf, inf, (obs_size,))`` per agent: each agent's observation,
        flattened, and zero-padded to the largest size when the agents' sizes differ (e.g.
        ``simple_speaker_listener``: 3 and 11). ``observation_mask`` ``[A, obs_size]`` bool
        (static, on ``device``) is true where an agent's entry is real; all true when the sizes
        agree. Scenarios with Dict observations are not supported (``TypeError``).
        ``state_space`` is the concatenation of all agents' padded observations,
        ``Box((A * obs_size,))``, what BenchMARL's MAPPO critic sees.
        ``agent_position_slice`` is ``(0, 2)`` for the scenarios of
        :data:`POSITION_FIRST_SCENARIOS`, whose observations start with the agent's own (x, y)
        position; ``None`` for the others (positions are also in
        ``env.env.agents[i].state.pos``).

    Action Space:
        ``continuous_actions=False`` (the default): ``Discrete(n)``, VMAS's discrete actions
        (the product of each agent's movement choices and communication symbols, 9 for a
        two-dimensional holonomic agent). When the agents' ``n`` differ (``diff_drive``,
        ``simple_speaker_listener``), the space is ``Discrete(max n)``, ``has_action_mask`` is
        True and ``info["action_mask"]`` (and :meth:`action_masks`) forbids the actions an agent
        lacks; such an action is legal input and acts as the agent's action 0 (no movement).
        Homogeneous agents have no action mask. ``multidiscrete_actions=True``: ``MultiDiscrete``
        (one entry per movement axis and one for communication), padded likewise (entries an
        agent lacks allow only 0; the mask concatenates the entries' masks).
        ``continuous_actions=True``: ``Box`` of the largest action size, bounded by the widest
        of the agents' ranges; each agent's actions are clamped to its own range and the
        entries past its size are ignored.

    Rewards:
        VMAS's per-agent rewards, ``[N, A]`` float32; shared-reward scenarios (e.g.
        ``navigation`` with ``shared_rew=True``) give each agent the same value.

    Episode End:
        ``terminated`` is the scenario's ``done()``; ``truncated`` is true when an episode
        reaches ``max_steps`` steps (VMAS's ``terminated_truncated=True`` flags). Copies that
        end are reset in the same ``step``. VMAS resets copies only one at a time
        (``Environment.reset_at(index)``, a Python call per copy) or all at once (``reset()``):
        the adapter reads the done mask on the host once per step (one device synchronisation
        per step on a GPU), calls ``reset()`` when every copy ended and ``reset_at`` for each
        ended copy otherwise. VMAS itself also synchronises inside its ``step`` (its asserts on
        the action values).

    Seeding:
        VMAS draws from its own copy of torch's, numpy's and Python's RNG states, swapped in
        around each of its calls and shared by every VMAS environment of the process (vmas
        1.5.2's ``local_seed``). ``reset(seed=s)`` seeds that state with ``s`` (VMAS's
        ``seed()`` calls ``torch.manual_seed(s)``) and ``self.generator`` with ``s``: the same
        seed and the same actions give the same trajectory, as long as no other VMAS
        environment steps in between. On the CPU the global torch RNG is left as it was; on a
        GPU ``torch.manual_seed`` also reseeds the global CUDA generators, which VMAS draws
        from without restoring them. ``seed=`` at construction seeds VMAS's first reset.

    Actions are checked as the base class checks them (out-of-range values: ``ValueError``
    naming the agent and copies; on an accelerator after the fact, see ``debug``). They go to
    VMAS as one slice per agent of the batched tensor, on the same device.

    Args:
        scenario: A name of :func:`scenario_names` or a ``vmas`` ``BaseScenario`` instance.
        num_envs: Number of copies.
        device: Where VMAS simulates and every tensor lives.
        continuous_actions: ``False`` (default): discrete actions, VMAS's discretisation of the
            movement. The default is discrete, unlike VMAS's own (``True``), because
            ``Discrete`` is the action space every Umbra agent and baseline handles (categorical
            heads, action masks, SB3's discrete algorithms) and the one Umbra's native
            multi-agent tasks use; pass ``True`` for VMAS's continuous forces.
        max_steps: Episode horizon (truncation), default 100 as BenchMARL uses for VMAS tasks
            (VMAS itself has none); ``None``: no time limit (``max_episode_steps`` is None).
        seed: Seed of the first reset at construction (``None``: continue VMAS's RNG state).
        multidiscrete_actions: With ``continuous_actions=False``, ``MultiDiscrete`` actions
            instead of their ``Discrete`` product.
        debug: Check every action's values at once, also on an accelerator (see
            :class:`~envs.core.BatchedEnv`).
        **scenario_kwargs: Arguments of the scenario (``n_agents``, ``shared_rew``, ...).

    Raises:
        ValueError: unknown scenario name (with close ones); ``multidiscrete_actions`` with
            ``continuous_actions``; ``max_steps < 1``.
        TypeError: arguments of the wrong type; a scenario with Dict observations.
    """

    description = "A VMAS scenario, simulated in torch on the environment's device."

    def __init__(
        self,
        scenario: str | BaseScenario = "navigation",
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        continuous_actions: bool = False,
        max_steps: int | None = 100,
        seed: int | None = None,
        multidiscrete_actions: bool = False,
        debug: bool = False,
        **scenario_kwargs: Any,
    ):
        scenario = _check_scenario(scenario)
        num_envs = check_num_envs(num_envs)
        resolved = resolve_device(device)
        continuous_actions = _check_bool("continuous_actions", continuous_actions)
        multidiscrete_actions = _check_bool("multidiscrete_actions", multidiscrete_actions)
        if continuous_actions and multidiscrete_actions:
            raise ValueError(
                "multidiscrete_actions=True needs continuous_actions=False (VMAS discretises "
                "the movement only for discrete actions)"
            )
        if max_steps is not None:
            max_steps = check_int("max_steps", max_steps, 1)
        seed = check_seed(seed)
        self.scenario_name = scenario if isinstance(scenario, str) else type(scenario).__name__
        #: The wrapped ``vmas.simulator.environment.Environment``.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.env = vmas.make_env(
                scenario,
                num_envs=num_envs,
                device=resolved,
                continuous_actions=continuous_actions,
                max_steps=max_steps,
                seed=seed,
                multidiscrete_actions=multidiscrete_actions,
                terminated_truncated=True,
                **scenario_kwargs,
            )
        for warning in caught:
            if "passed but not used by the scenario" in str(warning.message):
                # VMAS only warns; a misspelt option would silently train another task.
                raise TypeError(f"vmas:{self.scenario_name}: {warning.message} The adapter's own "
                                "options are continuous_actions, multidiscrete_actions, "
                                "max_steps, seed, device, debug")
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)
        self.max_episode_steps = max_steps
        self._build_observation_spaces()
        self._build_action_space()
        super().__init__(self.env.n_agents, num_envs, resolved, debug)
        if seed is not None:
            self.generator.manual_seed(seed)
        names = [agent.name for agent in self.env.agents]
        if len(set(names)) == len(names):
            self.possible_agents = names
        self.agent_observation_spaces = dict(
            zip(self.possible_agents, self._own_observation_spaces, strict=True))
        self.agent_action_spaces = dict(
            zip(self.possible_agents, self._own_action_spaces, strict=True))
        mask = self._obs_padding.mask
        self.observation_mask = (
            mask.to(self.device) if mask is not None
            else torch.ones(self.num_agents, self._obs_size, dtype=torch.bool, device=self.device)
        )
        if self.has_action_mask:
            self._static_action_mask = self._act_padding.mask.to(self.device)
        if isinstance(scenario, str) and scenario in POSITION_FIRST_SCENARIOS and \
                self.env.world.dim_p == 2:
            self.agent_position_slice = (0, 2)
        self._obs = torch.zeros(num_envs, self.num_agents, self._obs_size, device=self.device)

    # ------------------------------------------------------------------ spaces
    def _build_observation_spaces(self) -> None:
        names, own = [], []
        for agent, space in zip(self.env.agents, self.env.observation_space, strict=True):
            if not hasattr(space, "shape") or space.shape is None or hasattr(space, "spaces"):
                raise TypeError(
                    f"VMAS agent {agent.name} has observation space {space}: VmasToBatched "
                    "supports tensor (Box) observations only"
                )
            size = int(np.prod(space.shape))
            names.append(agent.name)
            own.append(gym.spaces.Box(-np.inf, np.inf, (size,), np.float32))
        # Observations are flattened and zero-padded as every adapter pads them.
        self._obs_padding = ObservationPadding(names, own)
        self._own_observation_spaces = own
        self._obs_size = self._obs_padding.size
        self.single_observation_space = self._obs_padding.single_space
        self.state_space = gym.spaces.Box(
            -np.inf, np.inf, (len(own) * self._obs_size,), np.float32
        )

    def _build_action_space(self) -> None:
        """The one (padded) action space of every agent and what maps it back to each agent's."""
        own = [_gymnasium_space(space) for space in self.env.action_space]
        if not isinstance(own[0], (gym.spaces.Box, gym.spaces.Discrete,
                                   gym.spaces.MultiDiscrete)):
            raise TypeError(f"unsupported VMAS action space {self.env.action_space[0]}")
        self._own_action_spaces = own
        self._act_padding = ActionPadding([agent.name for agent in self.env.agents], own)
        self.single_action_space = self._act_padding.single_space
        self.has_action_mask = self._act_padding.has_mask

    # ------------------------------------------------------------------ conversions
    def _observations(self, per_agent: list[torch.Tensor]) -> torch.Tensor:
        """VMAS's per-agent observations as one ``[N, A, obs_size]`` float32 tensor."""
        return self._obs_padding.pad_tensors(per_agent)

    def _vmas_actions(self, actions: torch.Tensor) -> list[torch.Tensor]:
        """One ``[N, agent_action_size]`` slice per agent, each in that agent's own space."""
        per_agent = self._act_padding.unpad_tensors(actions)
        # Discrete: VMAS wants [N, 1]
        return [action[:, None] if action.dim() == 1 else action for action in per_agent]

    # ------------------------------------------------------------------ the contract's pieces
    def _state(self) -> torch.Tensor:
        return self._obs.reshape(self.num_envs, -1)

    def _action_mask(self) -> torch.Tensor:
        mask = self._static_action_mask
        return mask.expand(self.num_envs, *mask.shape).clone()

    # ------------------------------------------------------------------ the batched API
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Obs, dict]:
        """Reset every copy; ``seed`` seeds VMAS and ``self.generator`` (see Seeding above).

        ``options`` is ignored: VMAS scenarios take no reset options.
        """
        seed = check_seed(seed)
        if seed is not None:
            self.generator.manual_seed(seed)
        self._obs = self._observations(self.env.reset(seed=seed))
        self._start_episodes()
        return self._obs, self._current_info()

    def step(
        self, actions: torch.Tensor
    ) -> tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Step every copy; copies that end are reset in the same call (one host read)."""
        if not self._has_reset:
            raise RuntimeError(f"{type(self).__name__}: call reset() before step()")
        actions = self._validate_actions(actions)
        obs, rewards, terminated, truncated, _ = self.env.step(self._vmas_actions(actions))
        final_obs = self._observations(obs)
        # Some scenarios (wheel) give [N, 1] rewards and flags, most [N].
        n = self.num_envs
        reward = torch.stack([r.reshape(n) for r in rewards], dim=1).to(torch.float32)
        terminated, truncated = terminated.reshape(n).bool(), truncated.reshape(n).bool()
        info = self._finish_step(
            reward, terminated, truncated, final_obs,
            {"final_state": final_obs.reshape(self.num_envs, -1)},
        )
        self._obs = self._autoreset(info["_episode"], final_obs)
        info.update(self._current_info())
        return self._obs, reward, terminated, truncated, info

    def _autoreset(self, done: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """Reset the copies where ``done``; the observations after the resets.

        VMAS resets either every copy or one index per call: the done mask is read on the host.
        """
        ended = done.nonzero()[:, 0].tolist()  # the one synchronisation per step
        if not ended:
            return obs
        if len(ended) == self.num_envs:
            return self._observations(self.env.reset())
        for index in ended[:-1]:
            self.env.reset_at(index, return_observations=False)
        return self._observations(self.env.reset_at(ended[-1]))

    def close(self) -> None:
        """Close VMAS's viewer, if it rendered."""
        viewer = getattr(getattr(self, "env", None), "viewer", None)
        if viewer is not None:
            viewer.close()

    def __repr__(self) -> str:
        return (
            f"VmasToBatched({self.scenario_name}, num_envs={self.num_envs}, "
            f"num_agents={self.num_agents}, device={self.device})"
        )


def _gymnasium_space(space: Any) -> gym.Space:
    """A VMAS (OpenAI gym) action space as the gymnasium space of the same kind."""
    kind = type(space).__name__
    if kind == "Box":
        return gym.spaces.Box(np.asarray(space.low, np.float32), np.asarray(space.high, np.float32),
                              dtype=np.float32)
    if kind == "Discrete":
        return gym.spaces.Discrete(int(space.n))
    if kind == "MultiDiscrete":
        return gym.spaces.MultiDiscrete(np.asarray(space.nvec, dtype=np.int64))
    return space

