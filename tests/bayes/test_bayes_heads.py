"""Bayesian linear heads: uncertainty behaviour, independent heads, resume, bad input."""

import gc

import pyro
import pytest
import torch

from bayes import BayesianLinear, train_bayesian_head


@pytest.fixture(autouse=True)
def _clean_pyro():
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    torch.set_num_threads(1)
    yield
    pyro.clear_param_store()


def _line_data(n: int, low: float = -1.0, high: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """y = 2x + N(0, 0.1^2) on x uniform in [low, high]."""
    x = torch.rand(n, 1) * (high - low) + low
    return x, 2.0 * x + 0.1 * torch.randn(n, 1)


X_ON = torch.linspace(-1.0, 1.0, 9)[:, None]
X_FAR = torch.tensor([[5.0]])


def _std(head: BayesianLinear, x: torch.Tensor) -> float:
    _, std = head.predict(x, num_samples=512, generator=torch.Generator().manual_seed(1))
    return float(std.mean())


def test_predictive_std_shrinks_with_data_and_grows_off_data():
    small, large = BayesianLinear(1, 1), BayesianLinear(1, 1)
    # 16 vectorised ELBO particles keep the scale gradients quiet enough to converge in 250 steps.
    train_bayesian_head(small, *_line_data(20), steps=250, lr=0.1, num_particles=16)
    train_bayesian_head(large, *_line_data(500), steps=250, lr=0.1, num_particles=16)
    for head in (small, large):
        mean, _ = head.predict(X_ON, num_samples=256)
        torch.testing.assert_close(mean, 2.0 * X_ON, atol=0.15, rtol=0.0)  # it learnt the line
        assert _std(head, X_FAR) > 2.0 * _std(head, X_ON)
    # Exact posterior std scales like 1/sqrt(N): 25x the data should cut it well below 0.6x.
    assert _std(large, X_ON) < 0.6 * _std(small, X_ON)
    assert _std(large, X_FAR) < 0.6 * _std(small, X_FAR)


def test_predict_is_one_batched_pass_with_right_shapes():
    head = BayesianLinear(3, 2)
    w, b = head.posterior_samples(7)
    assert w.shape == (7, 2, 3) and b.shape == (7, 2)
    mean, std = head.predict(torch.randn(5, 3), num_samples=16)
    assert mean.shape == std.shape == (5, 2)
    assert torch.all(std > 0)
    _, total = head.predict(torch.randn(5, 3), num_samples=16, include_noise=True)
    assert torch.all(total >= head.noise_scale)


def test_two_heads_train_independently():
    a, b = BayesianLinear(1, 1, name="head_a"), BayesianLinear(1, 1, name="head_b")
    store = set(pyro.get_param_store().keys())
    names_a = {k for k in store if k.startswith("head_a.")}
    names_b = {k for k in store if k.startswith("head_b.")}
    assert names_a and names_b and names_a.isdisjoint(names_b)
    assert set(a.state_dict()).isdisjoint(b.state_dict())  # keys carry the head's name

    before_a = {k: v.clone() for k, v in a.state_dict().items()}
    before_b = {k: v.clone() for k, v in b.state_dict().items()}
    train_bayesian_head(a, *_line_data(50), steps=30, lr=0.1)
    for k, v in b.state_dict().items():
        torch.testing.assert_close(v, before_b[k], rtol=0.0, atol=0.0)
    assert any(not torch.equal(v, before_a[k]) for k, v in a.state_dict().items())
    # The param store holds each head's own parameter tensors, never the other head's.
    store_b = {id(pyro.get_param_store()._params[k]) for k in names_b}
    assert store_b == {id(p) for p in b.parameters()}
    assert store_b.isdisjoint(id(p) for p in a.parameters())


def test_minibatch_training_with_data_size_scaling():
    head = BayesianLinear(1, 1)
    x, y = _line_data(200)
    losses = train_bayesian_head(head, x, y, steps=150, lr=0.1, batch_size=32)
    assert losses[-1] < losses[0]
    mean, _ = head.predict(X_ON, num_samples=64)
    torch.testing.assert_close(mean, 2.0 * X_ON, atol=0.2, rtol=0.0)


def test_state_dict_round_trip_restores_guide():
    head = BayesianLinear(1, 1, name="value_head")
    train_bayesian_head(head, *_line_data(50), steps=40, lr=0.1)
    saved = {k: v.clone() for k, v in head.state_dict().items()}
    expected, expected_std = head.predict(X_ON, generator=torch.Generator().manual_seed(3))
    del head
    gc.collect()  # the head and its guide reference each other

    resumed = BayesianLinear(1, 1, name="value_head")
    untrained, _ = resumed.predict(X_ON, generator=torch.Generator().manual_seed(3))
    assert not torch.allclose(untrained, expected, atol=1e-3)
    resumed.load_state_dict(saved)
    mean, std = resumed.predict(X_ON, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(mean, expected)
    torch.testing.assert_close(std, expected_std)
    # Training continues from the restored guide (the optimiser sees the loaded tensors).
    losses = train_bayesian_head(resumed, *_line_data(50), steps=2, lr=1e-3)
    assert losses[0] < 5.0


def test_duplicate_live_name_raises():
    head = BayesianLinear(1, 1, name="dup")
    with pytest.raises(ValueError, match="already exists"):
        BayesianLinear(1, 1, name="dup")
    del head


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"in_features": 0, "out_features": 1}, "in_features"),
        ({"in_features": 1, "out_features": 1, "prior_scale": 0.0}, "prior_scale"),
        ({"in_features": 1, "out_features": 1, "noise_scale": -1.0}, "noise_scale"),
        ({"in_features": 1, "out_features": 1, "name": "a.b"}, "name"),
        ({"in_features": 1, "out_features": 1, "name": ""}, "name"),
    ],
)
def test_bad_constructor_args(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BayesianLinear(**kwargs)


def test_bad_inputs_raise():
    head = BayesianLinear(2, 1)
    with pytest.raises(ValueError, match=r"shape \[B, 2\]"):
        head.predict(torch.randn(4, 3))
    with pytest.raises(ValueError, match=r"shape \[B, 2\]"):
        head.predict(torch.randn(4))
    with pytest.raises(ValueError, match="num_samples"):
        head.predict(torch.randn(4, 2), num_samples=1)
    with pytest.raises(ValueError, match="y must have shape"):
        head.loss(torch.randn(4, 2), torch.randn(4))
    with pytest.raises(ValueError, match="num_data"):
        head.loss(torch.randn(4, 2), torch.randn(4, 1), num_data=2)
    with pytest.raises(ValueError, match="num_particles"):
        head.loss(torch.randn(4, 2), torch.randn(4, 1), num_particles=0)
