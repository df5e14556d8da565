"""Bayesian linear heads: uncertainty, independent heads, resume, closed forms, bad input."""

import copy
import io
import pickle

import pyro
import pytest
import torch
from pyro import poutine
from torch import nn

from bayes import BayesianClassifier, BayesianLinear, train_bayesian_head


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
    a, b = BayesianLinear(1, 1), BayesianLinear(1, 1)
    # Both heads have the same Pyro names and state-dict keys, but their own tensors.
    assert set(a.state_dict()) == set(b.state_dict())
    assert {id(p) for p in a.parameters()}.isdisjoint(id(p) for p in b.parameters())

    before_a = {k: v.clone() for k, v in a.state_dict().items()}
    before_b = {k: v.clone() for k, v in b.state_dict().items()}
    train_bayesian_head(a, *_line_data(50), steps=30, lr=0.1)
    for k, v in b.state_dict().items():
        torch.testing.assert_close(v, before_b[k], rtol=0.0, atol=0.0)
    assert any(not torch.equal(v, before_a[k]) for k, v in a.state_dict().items())
    # Module-local parameters: nothing went through Pyro's global param store.
    assert not list(pyro.get_param_store().keys())


def test_minibatch_training_with_data_size_scaling():
    head = BayesianLinear(1, 1)
    x, y = _line_data(200)
    losses = train_bayesian_head(head, x, y, steps=150, lr=0.1, batch_size=32)
    assert losses[-1] < losses[0]
    mean, _ = head.predict(X_ON, num_samples=64)
    torch.testing.assert_close(mean, 2.0 * X_ON, atol=0.2, rtol=0.0)


def test_state_dict_round_trip_restores_guide():
    head = BayesianLinear(1, 1)
    train_bayesian_head(head, *_line_data(50), steps=40, lr=0.1)
    saved = {k: v.clone() for k, v in head.state_dict().items()}
    expected, expected_std = head.predict(X_ON, generator=torch.Generator().manual_seed(3))

    resumed = BayesianLinear(1, 1)
    untrained, _ = resumed.predict(X_ON, generator=torch.Generator().manual_seed(3))
    assert not torch.allclose(untrained, expected, atol=1e-3)
    resumed.load_state_dict(saved)
    mean, std = resumed.predict(X_ON, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(mean, expected)
    torch.testing.assert_close(std, expected_std)
    # Training continues from the restored guide (the optimiser sees the loaded tensors).
    losses = train_bayesian_head(resumed, *_line_data(50), steps=2, lr=1e-3)
    assert losses[0] < 5.0


def test_heads_leave_the_users_pyro_param_store_and_settings_alone():
    # A user's own Pyro parameter that happens to have the name of a head's guide parameter.
    user_param = pyro.param("head.guide.locs.head.weight", torch.ones(1, 1))
    head = BayesianLinear(1, 1)
    train_bayesian_head(head, *_line_data(50), steps=5, lr=0.1)
    head.guide(X_ON, None)  # the guide called directly, outside head.loss
    assert list(pyro.get_param_store().keys()) == ["head.guide.locs.head.weight"]
    assert pyro.param("head.guide.locs.head.weight") is user_param
    torch.testing.assert_close(user_param, torch.ones(1, 1), rtol=0.0, atol=0.0)
    assert all(p is not user_param.unconstrained() for p in head.parameters())
    assert pyro.settings.get("module_local_params") is False  # restored after every call


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"in_features": 0, "out_features": 1}, "in_features"),
        ({"in_features": 1, "out_features": 1, "prior_scale": 0.0}, "prior_scale"),
        ({"in_features": 1, "out_features": 1, "noise_scale": -1.0}, "noise_scale"),
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


# ---- state dicts, copies, pickles --------------------------------------------------------------


def _trained_head(kind: str) -> BayesianLinear | BayesianClassifier:
    x = torch.randn(40, 2)
    if kind == "linear":
        head = BayesianLinear(2, 1)
        target = x @ torch.tensor([[1.0], [-1.0]]) + 0.1 * torch.randn(40, 1)
    else:
        head = BayesianClassifier(2, 3)
        target = (x[:, 0] > -0.5).long() + (x[:, 0] > 0.5).long()  # three bands
    train_bayesian_head(head, x, target, steps=30, lr=0.1)
    return head


def _predictions(head: BayesianLinear | BayesianClassifier) -> list[torch.Tensor]:
    """Analytic and sampled predictions with fixed noise, for exact comparisons."""
    x = torch.linspace(-2.0, 2.0, 10).reshape(5, 2)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        out = list(head.posterior_mean_and_std(x))
        if isinstance(head, BayesianClassifier):
            out.append(head.predict_probs(x, num_samples=32, generator=gen))
        else:
            out.extend(head.predict(x, num_samples=32, generator=gen))
    return out


@pytest.mark.parametrize("kind", ["linear", "classifier"])
def test_checkpoint_loads_into_another_head(kind):
    saved = _trained_head(kind)
    state = saved.state_dict()
    assert all(key.startswith(("guide.locs.head.", "guide.scales.head.")) for key in state)

    resumed = _trained_head(kind)  # trained otherwise; both are alive
    assert any(
        not torch.equal(a, b)
        for a, b in zip(_predictions(resumed), _predictions(saved), strict=True)
    )
    result = resumed.load_state_dict(state)  # strict
    assert not result.missing_keys and not result.unexpected_keys
    for got, expected in zip(_predictions(resumed), _predictions(saved), strict=True):
        torch.testing.assert_close(got, expected, rtol=0.0, atol=0.0)
    # The loaded values live in the resumed head's own tensors, not the saved head's.
    assert {id(p) for p in resumed.parameters()}.isdisjoint(id(p) for p in saved.parameters())


class _Policy(nn.Module):
    """A parent module holding two heads, as a PPO policy or a GNN classifier would."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Linear(3, 2)
        self.value = BayesianLinear(2, 1)
        self.classify = BayesianClassifier(2, 3)

    def outputs(self) -> list[torch.Tensor]:
        with torch.no_grad():
            z = self.trunk(torch.linspace(-1.0, 1.0, 12).reshape(4, 3))
            return [*self.value.posterior_mean_and_std(z), *self.classify.posterior_mean_and_std(z)]


def _perturbed_policy() -> _Policy:
    policy = _Policy()
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return policy


def test_parent_state_dict_is_name_independent_and_strict():
    saved, fresh = _perturbed_policy(), _Policy()
    state = saved.state_dict()
    assert set(state) == set(fresh.state_dict())
    assert "value.guide.locs.head.weight_unconstrained" in state
    fresh.load_state_dict(state)
    for got, expected in zip(fresh.outputs(), saved.outputs(), strict=True):
        torch.testing.assert_close(got, expected, rtol=0.0, atol=0.0)

    # Strict loading still reports missing, unexpected and mis-shaped entries.
    missing = dict(state)
    del missing["classify.guide.scales.head.bias_unconstrained"]
    with pytest.raises(RuntimeError, match=r"Missing key.*classify\.guide\.scales\.head\.bias"):
        _Policy().load_state_dict(missing)
    extra = {**state, "value.guide.locs.other.weight_unconstrained": torch.zeros(1, 2)}
    with pytest.raises(RuntimeError, match="Unexpected key"):
        _Policy().load_state_dict(extra)
    wrong = {**state, "value.guide.locs.head.weight_unconstrained": torch.zeros(1, 3)}
    with pytest.raises(RuntimeError, match="size mismatch"):
        _Policy().load_state_dict(wrong)


def test_torch_save_and_weights_only_load_round_trip():
    saved = _perturbed_policy()
    buffer = io.BytesIO()
    torch.save(saved.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    resumed = _Policy()
    resumed.load_state_dict(state)
    for got, expected in zip(resumed.outputs(), saved.outputs(), strict=True):
        torch.testing.assert_close(got, expected, rtol=0.0, atol=0.0)


def test_deepcopy_and_pickle_give_independent_working_heads():
    saved = _perturbed_policy()
    copied = copy.deepcopy(saved)
    unpickled = pickle.loads(pickle.dumps(saved))
    for clone in (copied, unpickled):
        assert type(clone.value) is BayesianLinear and type(clone.classify) is BayesianClassifier
        assert {id(p) for p in clone.parameters()}.isdisjoint(id(p) for p in saved.parameters())
        for got, expected in zip(clone.outputs(), saved.outputs(), strict=True):
            torch.testing.assert_close(got, expected, rtol=0.0, atol=0.0)
    # Training a copy leaves the original untouched.
    before = saved.outputs()
    train_bayesian_head(copied.value, torch.randn(20, 2), torch.randn(20, 1), steps=5, lr=0.1)
    assert not torch.equal(copied.outputs()[0], before[0])
    for got, expected in zip(saved.outputs(), before, strict=True):
        torch.testing.assert_close(got, expected, rtol=0.0, atol=0.0)


def test_checkpoints_with_the_head_name_in_their_keys_still_load():
    # Heads named "old_style" once wrote "guide.locs.old_style.weight_unconstrained"...
    saved = _trained_head("linear")
    old_keys = {k.replace(".head.", ".old_style."): v for k, v in saved.state_dict().items()}
    expected = _predictions(saved)
    resumed = BayesianLinear(2, 1)
    resumed.load_state_dict(old_keys)
    for got, want in zip(_predictions(resumed), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0.0, atol=0.0)


# ---- closed forms for hand-built losses (PPO value head, Thompson sampling) -------------------


def _random_guide(head: BayesianLinear | BayesianClassifier) -> None:
    """Spread the guide's locations and scales so closed forms are checked away from init."""
    gen = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for name, p in head.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            p.copy_(0.5 * noise - (1.0 if ".scales." in name else 0.0))


def _leaf(head, group: str, site: str) -> torch.Tensor:
    return dict(head.named_parameters())[f"guide.{group}.head.{site}_unconstrained"]


def test_posterior_mean_and_std_match_many_samples():
    head = BayesianLinear(3, 2)
    _random_guide(head)
    x = torch.randn(6, 3)
    with torch.no_grad():
        mean, std = head.posterior_mean_and_std(x)
        mean_3d, std_3d = head.posterior_mean_and_std(x.reshape(2, 3, 3))
    num_samples = 40_000
    mc_mean, mc_std = head.predict(
        x, num_samples=num_samples, generator=torch.Generator().manual_seed(5)
    )
    # Within 4 Monte Carlo standard errors: std / sqrt(S) for the mean, std / sqrt(2 S) for the std.
    assert torch.all((mc_mean - mean).abs() < 4 * std / num_samples**0.5)
    assert torch.all((mc_std - std).abs() < 4 * std / (2 * num_samples) ** 0.5)
    # Any leading dims: the same numbers as the flat batch.
    torch.testing.assert_close(mean_3d.reshape(6, 2), mean)
    torch.testing.assert_close(std_3d.reshape(6, 2), std)


def test_posterior_mean_and_std_are_differentiable():
    head = BayesianLinear(3, 2)
    _random_guide(head)
    x = torch.randn(4, 3, requires_grad=True)
    mean, std = head.posterior_mean_and_std(x)
    (mean.sum() + std.sum()).backward()
    assert x.grad is not None and torch.all(x.grad != 0)
    for p in head.parameters():
        assert p.grad is not None and torch.all(p.grad != 0)


def test_kl_divergence_matches_pyro_monte_carlo_estimate():
    head = BayesianClassifier(3, 2, prior_scale=0.7)
    _random_guide(head)
    kl = head.kl_divergence()
    # Pyro's own sampled estimate: log q - log p of the weight and bias sites, per particle.
    x, labels = torch.randn(4, 3), torch.tensor([0, 1, 1, 0])
    with torch.no_grad(), pyro.plate("particles", 20_000, dim=-1):
        guide_tr = poutine.trace(head.guide).get_trace(x, labels)
        model_tr = poutine.trace(poutine.replay(head, trace=guide_tr)).get_trace(x, labels)
    guide_tr.compute_log_prob()
    model_tr.compute_log_prob()
    log_q = sum(site["log_prob"] for site in guide_tr.nodes.values() if site["type"] == "sample")
    log_p = sum(model_tr.nodes[f"head.{site}"]["log_prob"] for site in ("weight", "bias"))
    per_particle = log_q - log_p
    mc, se = per_particle.mean(), per_particle.std() / per_particle.numel() ** 0.5
    assert abs(kl.item() - mc.item()) < 4 * se.item()
    kl.backward()  # differentiable in every guide parameter
    assert all(p.grad is not None and torch.all(p.grad != 0) for p in head.parameters())


def test_kl_divergence_is_zero_when_the_guide_equals_the_prior():
    head = BayesianLinear(2, 3, prior_scale=0.5)
    softplus_inv = torch.tensor(0.5).expm1().log()  # AutoNormal's scales are softplus(u)
    with torch.no_grad():
        for name, p in head.named_parameters():
            p.fill_(softplus_inv if ".scales." in name else 0.0)
    torch.testing.assert_close(head.kl_divergence(), torch.tensor(0.0), atol=1e-6, rtol=0.0)
    assert BayesianLinear(2, 3, prior_scale=0.5).kl_divergence().item() > 0.0  # at init


def test_weights_from_noise_reparameterises_with_gradients():
    head = BayesianLinear(3, 2)
    _random_guide(head)
    loc = head.loc_and_scale()
    assert loc.weight_loc.shape == loc.weight_scale.shape == (2, 3)
    assert loc.bias_loc.shape == loc.bias_scale.shape == (2,)
    # Zero noise gives the locations; the same noise gives posterior_samples' weights.
    w, b = head.weights_from_noise(torch.zeros(2, 3), torch.zeros(2))
    torch.testing.assert_close(w, loc.weight_loc)
    torch.testing.assert_close(b, loc.bias_loc)
    eps_w, eps_b = head.sample_noise((4, 5), generator=torch.Generator().manual_seed(2))
    assert eps_w.shape == (4, 5, 2, 3) and eps_b.shape == (4, 5, 2)
    w, b = head.weights_from_noise(eps_w, eps_b)
    w_ref, b_ref = head.posterior_samples(20, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(w.reshape(20, 2, 3), w_ref)
    torch.testing.assert_close(b.reshape(20, 2), b_ref)
    # Gradients reach locations (d/dloc = 1 per sample) and scales (through softplus).
    (w.sum() + b.sum()).backward()
    torch.testing.assert_close(_leaf(head, "locs", "weight").grad, torch.full((2, 3), 20.0))
    torch.testing.assert_close(_leaf(head, "locs", "bias").grad, torch.full((2,), 20.0))
    u_w = _leaf(head, "scales", "weight")
    torch.testing.assert_close(u_w.grad, eps_w.sum((0, 1)) * torch.sigmoid(u_w.detach()))
    assert torch.all(_leaf(head, "scales", "bias").grad != 0)


def test_closed_form_bad_inputs_raise():
    head = BayesianLinear(3, 2)
    with pytest.raises(ValueError, match=r"shape \[\.\.\., 3\]"):
        head.posterior_mean_and_std(torch.randn(4, 2))
    with pytest.raises(ValueError, match=r"sample_noise"):
        head.weights_from_noise(torch.zeros(2, 3), torch.zeros(3))
    with pytest.raises(ValueError, match=r"\[\*S, 2, 3\]"):
        head.weights_from_noise(torch.zeros(4, 3, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="same S"):
        head.weights_from_noise(torch.zeros(4, 2, 3), torch.zeros(5, 2))
