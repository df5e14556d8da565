"""POPGym's MultiarmedBandit: find the best arm of a fresh bandit within one episode."""

from __future__ import annotations

import gymnasium as gym
import torch

from envs.core import BatchedEnv, check_int


class MultiarmedBandit(BatchedEnv):
    """Episodic multi-armed bandit: explore the arms, then exploit the one that pays best.

    Mirrors ``popgym.envs.multiarmed_bandit.MultiarmedBandit`` (popgym 1.0.7). Every episode
    draws new payout probabilities for ``num_bandits`` arms. Pulling an arm pays out with its
    probability; the observation says only whether the last pull paid, not which arm was pulled,
    so the agent must remember its pulls and their outcomes to estimate the arms.

    ## Action Space
    ``Discrete(num_bandits)``: the arm to pull.

    ## Observation Space
    ``Discrete(2)`` (an int64 per copy): 1 if the last pull paid out, 0 if not; 0 at the start of
    an episode. As in popgym.

    ## Rewards
    ``+1 / episode_length`` for a payout, ``-1 / episode_length`` otherwise. The return lies in
    [-1, 1]; pulling the best arm every step gives ``2 p_max - 1`` in expectation.

    ## Starting State
    Each arm's payout probability uniform in [0, 1), float32, independently (popgym's
    ``np_random.random(num_bandits, dtype=np.float32)``). They are the attribute ``bandits``
    (``[num_envs, num_bandits]``); popgym also returns them in ``info["bandits"]``, which the
    batched contract's ``info`` does not carry. ``reset(options={"bandits": p})``, with ``p`` a
    float tensor ``[num_envs, num_bandits]`` in [0, 1], starts every copy with those arms instead
    (the tests use it); automatic resets draw fresh ones.

    ## Episode End
    Never terminates; truncated after ``episode_length`` steps (``max_episode_steps``).

    ## Arguments
    ``num_envs``, ``device``, ``debug`` (see :class:`~envs.core.BatchedEnv`) and

    - ``num_bandits`` (int >= 1, default 10): the arms;
    - ``episode_length`` (int >= 1, default 200): steps per episode.

    ``popgym/MultiarmedBanditEasy-v0``: 10 arms, 200 steps; ``Medium``: 20 arms, 400 steps;
    ``Hard``: 30 arms, 600 steps (popgym's ``MultiarmedBanditEasy``, ``MultiarmedBanditMedium``,
    ``MultiarmedBanditHard``).

    ## Version History
    - v0: first version (popgym 1.0.7).
    """

    description = "Episodic multi-armed bandit, observing only payouts (POPGym MultiarmedBandit)."
    #: The popgym class mirrored (see envs.popgym.package_class).
    popgym_class = "popgym.envs.multiarmed_bandit:MultiarmedBandit"

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        debug: bool = False,
        num_bandits: int = 10,
        episode_length: int = 200,
    ):
        self.num_bandits = check_int("num_bandits", num_bandits, 1)
        self.episode_length = check_int("episode_length", episode_length, 1)
        self.max_episode_steps = self.episode_length
        self.payout_reward = 1.0 / self.episode_length
        self.single_observation_space = gym.spaces.Discrete(2)
        self.single_action_space = gym.spaces.Discrete(self.num_bandits)
        super().__init__(num_envs, device, debug)
        #: Every arm's payout probability, ``[num_envs, num_bandits]`` float32.
        self.bandits = torch.zeros(self.num_envs, self.num_bandits, device=self.device)
        #: The observation: whether the last pull paid out, ``[num_envs]`` int64.
        self.last_obs = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)

    def _reset_copies(self, mask: torch.Tensor, options: dict | None = None) -> None:
        fresh = torch.rand(self.bandits.shape, generator=self.generator, device=self.device)
        if options is not None and "bandits" in options:
            fresh = self._given_bandits(options["bandits"])
        self.bandits = torch.where(mask[:, None], fresh, self.bandits)
        self.last_obs = torch.where(mask, 0, self.last_obs)

    def _given_bandits(self, bandits: torch.Tensor) -> torch.Tensor:
        shape = (self.num_envs, self.num_bandits)
        bandits = torch.as_tensor(bandits, dtype=torch.float32, device=self.device)
        if tuple(bandits.shape) != shape:
            raise ValueError(
                f"options['bandits'] must have shape {shape}, got {tuple(bandits.shape)}"
            )
        if not bool(((bandits >= 0) & (bandits <= 1)).all()):
            raise ValueError("options['bandits'] must hold probabilities in [0, 1]")
        return bandits

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        chance = self.bandits.gather(1, actions.to(torch.int64)[:, None])[:, 0]
        draw = torch.rand(self.num_envs, generator=self.generator, device=self.device)
        paid = draw < chance
        self.last_obs = paid.to(torch.int64)
        reward = torch.where(paid, self.payout_reward, -self.payout_reward).to(torch.float32)
        return reward, torch.zeros_like(paid)

    def _observe(self) -> torch.Tensor:
        return self.last_obs.clone()
