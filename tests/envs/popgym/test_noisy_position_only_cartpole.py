"""popgym/NoisyPositionOnlyCartPole*: equal to popgym's NoisyPositionOnlyCartPole step by step
(the package's noise injected through ``draw_noise``) and in distribution (helpers and
tolerances: control_reference.py; spaces, time limit and seeding: test_contract.py)."""

from __future__ import annotations

import control_reference as control
import numpy as np
import pytest

import envs
from envs.popgym import package_class as package_path

IDS = [f"popgym/NoisyPositionOnlyCartPole{d}-v0" for d in ("Easy", "Medium", "Hard")]


@pytest.mark.parametrize("env_id", IDS)
def test_noise_and_length_equal_popgyms(env_id):
    env = envs.make(env_id)
    ref = control.package_class(package_path(env_id))()
    assert env.max_episode_steps == ref.max_episode_length == 200
    np.testing.assert_array_equal(ref.noise_sigma, env.noise_sigma)


@pytest.mark.parametrize("env_id", IDS)
def test_side_by_side_with_the_package(env_id):
    """Same states, actions and noise: same noisy (clipped) observations, rewards, terminations
    and truncations, the first observation of every episode included."""
    control.assert_cartpole_side_by_side(env_id, steps=220)


@pytest.mark.parametrize("env_id", [IDS[0], IDS[2]])
def test_noise_has_popgyms_standard_deviation(env_id):
    """Observation minus the true cart position at reset: N(0, sigma^2), batched and package
    (the position never nears the clipping bounds +-4.8)."""
    sigma = envs.make(env_id).noise_sigma
    env = envs.make(env_id, num_envs=4096)
    obs, _ = env.reset(seed=0)
    noise = (obs[:, 0] - env.state[:, 0]).double().numpy()
    ref = control.package_class(package_path(env_id))()
    ref_noise = []
    for k in range(1000):
        ref_obs, _ = ref.reset(seed=k)
        ref_noise.append(ref_obs[0] - ref.state[0])
    for sample in (noise, np.array(ref_noise)):
        assert abs(sample.mean()) < 4 * sigma / np.sqrt(len(sample))
        assert abs(sample.std() - sigma) < 4 * sigma / np.sqrt(2 * len(sample))


@pytest.mark.parametrize("policy", [control.random_push, control.push_toward_second])
def test_returns_and_lengths_match_the_package_in_distribution(policy):
    """Random and scripted (push toward the noisy pole angle's side) policies on the Hard id:
    first 2 episodes of 1,024 copies against 600 package episodes."""
    control.assert_same_episodes(IDS[2], policy, 600)


def test_a_different_noise_fails_the_comparison():
    """Control for the test above: noise 0.1 (Easy) against popgym's 0.3 (Hard)."""
    returns, _ = control.first_episodes(IDS[0], control.push_toward_second)
    ref_returns, _ = control.package_episodes(package_path(IDS[2]), control.push_toward_second, 600)
    assert abs(control.z_score(returns, ref_returns)) > 4
