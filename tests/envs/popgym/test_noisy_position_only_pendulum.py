"""popgym/NoisyPositionOnlyPendulum*: equal to popgym's NoisyPositionOnlyPendulum step by step
(the package's noise injected through ``draw_noise``) and in distribution (helpers and
tolerances: control_reference.py; spaces, time limit and seeding: test_contract.py)."""

from __future__ import annotations

import control_reference as control
import numpy as np
import pytest
import torch

import envs
from envs.popgym import package_class as package_path

IDS = [f"popgym/NoisyPositionOnlyPendulum{d}-v0" for d in ("Easy", "Medium", "Hard")]


@pytest.mark.parametrize("env_id", IDS)
def test_noise_and_length_equal_popgyms(env_id):
    env = envs.make(env_id)
    ref = control.package_class(package_path(env_id))()
    assert env.max_episode_steps == ref.max_episode_length == 200
    np.testing.assert_array_equal(ref.noise_sigma, env.noise_sigma)


@pytest.mark.parametrize("env_id", IDS)
def test_side_by_side_with_the_package(env_id):
    """Same states, torques and noise: same noisy (clipped to [-1, 1]) observations, rewards and
    truncations, the first observation of every episode included."""
    ended = control.side_by_side(env_id, control.PENDULUM, control.random_torque, steps=205)
    assert ended == {"terminated": 0, "truncated": 6}


def _reset_noise(env_id, seed=0):
    """Observation minus cos/sin of the true angle at reset (clipped noise), batched (4,096
    copies) and package (1,000 resets), flattened."""
    env = envs.make(env_id, num_envs=4096)
    obs, _ = env.reset(seed=seed)
    clean = torch.stack((env.theta.cos(), env.theta.sin()), 1)
    ref = control.package_class(package_path(env_id))()
    ref_noise = []
    for k in range(1000):
        ref_obs, _ = ref.reset(seed=seed + k)
        ref_noise.append(ref_obs - np.array([np.cos(ref.state[0]), np.sin(ref.state[0])]))
    return (obs - clean).double().flatten().numpy(), np.concatenate(ref_noise)


@pytest.mark.parametrize("env_id", [IDS[0], IDS[2]])
def test_clipped_noise_matches_the_package_in_distribution(env_id):
    """The clipped noise has the package's mean, mean square and mean absolute value (4 SE)."""
    noise, ref_noise = _reset_noise(env_id)
    for f in (lambda x: x, np.square, np.abs):
        assert abs(control.z_score(f(noise), f(ref_noise))) < 4
    sigma = envs.make(env_id).noise_sigma
    assert 0.8 * sigma < ref_noise.std() < sigma  # clipping at +-1 shrinks it a little


def test_a_different_noise_fails_the_comparison():
    """Control for the test above: noise 0.1 (Easy) against popgym's 0.3 (Hard)."""
    easy, _ = _reset_noise(IDS[0])
    _, hard = _reset_noise(IDS[2])
    assert abs(control.z_score(np.square(easy), np.square(hard))) > 4


@pytest.mark.parametrize("policy", [control.random_torque_obs, control.oppose_sine])
def test_returns_and_lengths_match_the_package_in_distribution(policy):
    """Random and scripted (torque against the noisy sin(theta)) policies on the Hard id: one
    episode of each of 1,024 copies against 60 package episodes of 200 steps."""
    _, lengths, _, ref_lengths = control.assert_same_episodes(IDS[2], policy, 60, per_copy=1)
    assert (lengths == 200).all() and (ref_lengths == 200).all()
