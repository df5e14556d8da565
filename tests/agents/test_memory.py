"""Memory cores: one sequence interface, resets that isolate episodes, fast paths that agree."""

import pytest
import torch

from agents.memory import CORES, make_core, reset_state

RECURRENT = [name for name, cls in CORES.items() if cls.recurrent]


def _core(name):
    return make_core(name, input_size=5, hidden_size=8)


def _step_by_step(core, x, state, episode_start):
    ys = []
    for t in range(x.shape[0]):
        y, state = core(x[t : t + 1], state, episode_start[t : t + 1])
        ys.append(y)
    return torch.cat(ys), state


@pytest.mark.parametrize("name", sorted(CORES))
def test_interface_shapes(name):
    core = _core(name)
    state = core.initial_state(3)
    assert all(s.shape[1] == 3 for s in state), "the batch is axis 1 of every state tensor"
    y, new_state = core(torch.randn(7, 3, 5), state, torch.zeros(7, 3, dtype=torch.bool))
    assert y.shape == (7, 3, core.output_size)
    assert [s.shape for s in new_state] == [s.shape for s in state]


@pytest.mark.parametrize("name", RECURRENT)
def test_whole_sequence_call_equals_step_by_step(name):
    """The fast path (one call, sequences cut at episode starts) computes the rollout's values."""
    core = _core(name)
    x = torch.randn(12, 6, 5)
    state = tuple(torch.randn_like(s) for s in core.initial_state(6))
    episode_start = torch.rand(12, 6) < 0.2
    episode_start[5, 0] = True  # at least one start inside
    y, final = core(x, state, episode_start)
    y_ref, final_ref = _step_by_step(core, x, state, episode_start)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=0)
    for a, b in zip(final, final_ref, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("path", ["_forward_steps", "_forward_pieces"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_both_recurrent_paths_equal_step_by_step(path, cell, num_layers):
    """The CPU's step loop and the accelerator's padded pieces (run here on the CPU) give the
    rollout's outputs and final state, gradients included."""
    core = make_core(cell, input_size=5, hidden_size=8, num_layers=num_layers)
    x = torch.randn(12, 6, 5, requires_grad=True)
    state = tuple(torch.randn_like(s) for s in core.initial_state(6))
    episode_start = torch.rand(12, 6) < 0.2
    episode_start[5, 0] = True
    y, final = getattr(core, path)(x, reset_state(state, episode_start[0]), episode_start)
    y_ref, final_ref = _step_by_step(core, x, state, episode_start)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=0)
    for a, b in zip(final, final_ref, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    grad, = torch.autograd.grad(y.square().sum(), x)
    grad_ref, = torch.autograd.grad(y_ref.square().sum(), x)
    torch.testing.assert_close(grad, grad_ref, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(CORES))
def test_episode_start_isolates_the_new_episode(name):
    """Outputs from an episode start on do not depend on anything before it."""
    core = _core(name)
    x = torch.randn(10, 4, 5)
    state = tuple(torch.randn_like(s) for s in core.initial_state(4))
    episode_start = torch.zeros(10, 4, dtype=torch.bool)
    episode_start[6] = True
    y, _ = core(x, state, episode_start)
    perturbed = x.clone()
    perturbed[:6] += torch.randn(6, 4, 5)
    other_state = tuple(torch.randn_like(s) for s in state)
    y_perturbed, _ = core(perturbed, other_state, episode_start)
    torch.testing.assert_close(y[6:], y_perturbed[6:], atol=1e-6, rtol=0)
    if core.recurrent:
        assert not torch.allclose(y[:6], y_perturbed[:6]), "earlier steps should have changed"


@pytest.mark.parametrize("name", RECURRENT)
def test_state_carries_information_within_an_episode(name):
    core = _core(name)
    x = torch.randn(6, 2, 5)
    state = core.initial_state(2)
    no_start = torch.zeros(6, 2, dtype=torch.bool)
    y, _ = core(x, state, no_start)
    changed = x.clone()
    changed[0] += 1.0
    y_changed, _ = core(changed, state, no_start)
    assert not torch.allclose(y[-1], y_changed[-1]), "the first input must reach the last output"


def test_unknown_core_is_a_clear_error():
    with pytest.raises(ValueError, match="lstm"):
        make_core("lstn", 4, 8)
    with pytest.raises(ValueError, match="num_layers"):
        make_core("gru", 4, 8, num_layers=0)


@pytest.mark.parametrize("window", [1, 4])
def test_transformer_attends_to_exactly_its_window(window):
    core = make_core("transformer", 5, 8, window=window, num_layers=1)
    x = torch.randn(12, 2, 5)
    state = core.initial_state(2)
    no_start = torch.zeros(12, 2, dtype=torch.bool)
    y, _ = core(x, state, no_start)
    t = 10
    outside, inside = x.clone(), x.clone()
    outside[t - window - 1] += 1.0
    inside[t - window] += 1.0
    torch.testing.assert_close(core(outside, state, no_start)[0][t], y[t], atol=1e-6, rtol=0)
    assert not torch.allclose(core(inside, state, no_start)[0][t], y[t])


@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
@pytest.mark.parametrize("gating", [False, True])
def test_transformer_variants_agree_with_step_by_step(positions, gating):
    core = make_core("transformer", 5, 8, window=3, num_layers=2, num_heads=2,
                     positions=positions, gating=gating)
    x = torch.randn(9, 3, 5)
    episode_start = torch.rand(9, 3) < 0.25
    y, final = core(x, core.initial_state(3), episode_start)
    y_ref, final_ref = _step_by_step(core, x, core.initial_state(3), episode_start)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=0)
    for a, b in zip(final, final_ref, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_bad_core_settings_are_clear_errors():
    with pytest.raises(ValueError, match="window"):
        make_core("transformer", 4, 8, window=0)
    with pytest.raises(ValueError, match="num_heads"):
        make_core("linear", 4, 8, num_heads=3)
    with pytest.raises(ValueError, match="positions"):
        make_core("transformer", 4, 8, positions="rotary")
