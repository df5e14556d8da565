"""Bayesian heads inside PPO: a value head that knows what it has not seen.

:class:`BayesianValueHead` replaces the critic's final ``Linear(D, 1)`` by a Bayesian linear
regression on the critic's features: a Pyro :class:`bayes.heads.BayesianLinear` (Normal priors on
weight and bias, an ``AutoNormal`` guide whose mean PPO trains). Its value is the posterior-mean
prediction, so the rollout, GAE and the ratio-equals-one invariant see a deterministic number; its
epistemic standard deviation is exact for a Gaussian posterior (no sampling):

.. math::
    \\mathrm{Var}[V(x)] = \\tilde x^\\top \\Sigma\\, \\tilde x, \\qquad \\tilde x = (x, 1).

By default ``Sigma`` is the full-covariance posterior given the features of the last rollout's
states (the ELBO's closed-form optimum for a linear-Gaussian model); see the class for the
mean-field alternative. Training uses the ELBO with a unit-variance Gaussian likelihood on the
returns; in expectation under the posterior it is closed form, and PPO adds it to its (clipped)
squared error::

    -ELBO / N = 0.5 * (returns - mean)^2 + 0.5 * var + KL(q || prior) / N  (+ const)

with ``N`` the samples of one rollout (the KL weight shrinks with the data, as in
:mod:`bayes.heads`). The uncertainty is logged as ``uncertainty/value_std`` and can be added to the
reward as an exploration bonus (``PPOConfig.uncertainty_bonus``). :class:`ThompsonLinear` makes
the policy head's last layer Bayesian, for Thompson-style exploration.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import transform_to

from bayes.heads import BayesianLinear

#: Learning-rate multiplier of the guides' scale parameters. The ELBO asks the scales to fall
#: from the guide's initial 0.1 to about ``1 / sqrt(num_data * E[x^2])`` (a few hundredths);
#: at PPO's step sizes (~1e-3, a few hundred Adam steps per run) a log-scale would move by
#: well under 1, so the posterior would never get there and the std would track feature norms.
SCALE_LR_MULTIPLIER = 20.0


def guide_scale_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The trainable (unconstrained) scale parameters of every Pyro autoguide inside ``module``."""
    return [p for name, p in module.named_parameters()
            if ".guide.scales." in f".{name}" and p.requires_grad]


class BayesianValueHead(nn.Module):
    """The critic's last layer as a Bayesian linear regression on the critic's features.

    The Pyro :class:`bayes.heads.BayesianLinear` holds the priors and the guide; the guide's mean
    is trained by PPO's optimiser through the ELBO. The weight covariance is either

    - ``"full"`` (default): the ELBO's optimum among full-covariance Gaussians, in closed form
      for a linear-Gaussian model: ``Sigma = (X^T X / noise^2 + I / prior^2)^-1`` over the
      features ``X`` (with a bias column) of the last rollout's states (Bayesian last layer /
      "neural linear"). Directions of feature space the policy never visits keep the prior's
      variance, so states never seen stay uncertain; or
    - ``"diagonal"``: the mean-field guide's own scales (``AutoNormal``), trained by the ELBO.
      Cheaper, but a diagonal posterior cannot tell visited feature directions from unvisited
      ones: its std mostly follows the features' norm.

    Args:
        in_features: Width of the critic's features.
        prior_scale: Standard deviation of the Normal priors on weights and bias.
        covariance: ``"full"`` or ``"diagonal"``.

    Shapes:
        ``y`` ``[..., in_features]`` -> ``(mean, var)``, each ``[..., 1]``: the value and its
        epistemic variance (in the autograd graph: the ELBO's variance term).
    """

    def __init__(self, in_features: int, prior_scale: float = 1.0, covariance: str = "full"):
        super().__init__()
        if covariance not in ("full", "diagonal"):
            raise ValueError(f"covariance must be 'full' or 'diagonal', got {covariance!r}")
        self.linear = BayesianLinear(in_features, 1, prior_scale=prior_scale, noise_scale=1.0)
        self.covariance = covariance
        self.prior_scale = float(prior_scale)
        if covariance == "full":
            # The closed-form covariance replaces the guide's scales, which would get no
            # gradient: frozen (so no optimiser holds them), they stay in the state dict.
            self.linear.guide.scales.requires_grad_(False)
            size = in_features + 1
            #: Cholesky factor of the weight covariance (the prior's until the first fit).
            self.register_buffer("scale_tril", torch.eye(size) * self.prior_scale)
            #: Sum of ``x x^T`` (bias column included) over the states seen since the last fit;
            #: its last diagonal entry (bias x bias) counts those states.
            self.register_buffer("gram", torch.zeros(size, size))

    def _with_bias(self, y: torch.Tensor) -> torch.Tensor:
        return torch.cat((y, torch.ones_like(y[..., :1])), dim=-1)

    def forward(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The value's posterior mean and epistemic variance at features ``y``."""
        if self.covariance == "diagonal":
            mean, std = self.linear.posterior_mean_and_std(y)
            return mean, std.square()
        p = self.linear.loc_and_scale()
        mean = nn.functional.linear(y, p.weight_loc, p.bias_loc)
        var = (self._with_bias(y) @ self.scale_tril).square().sum(-1, keepdim=True)
        return mean, var

    @torch.no_grad()
    def observe(self, y: torch.Tensor) -> None:
        """Count visited states' features ``y`` ``[..., in_features]`` as data for the next
        :meth:`fit` (a no-op for the diagonal covariance)."""
        if self.covariance == "full":
            x = self._with_bias(y.reshape(-1, y.shape[-1]))
            self.gram += x.T @ x

    @torch.no_grad()
    def fit(self) -> None:
        """Set the covariance to the posterior given the observed inputs, and forget them."""
        if self.covariance != "full" or not bool(self.gram[-1, -1] > 0):  # no state observed
            return
        size = self.gram.shape[0]
        precision = self.gram + torch.eye(size, device=self.gram.device) / self.prior_scale**2
        covariance = torch.cholesky_inverse(torch.linalg.cholesky(precision))
        self.scale_tril.copy_(torch.linalg.cholesky(covariance))
        self.gram.zero_()

    def kl_divergence(self) -> torch.Tensor:
        """``KL(q || prior)`` of the weights (closed form)."""
        if self.covariance == "diagonal":
            return self.linear.kl_divergence()
        p = self.linear.loc_and_scale()
        loc = torch.cat((p.weight_loc.flatten(), p.bias_loc))
        var_p = self.prior_scale**2
        size = loc.numel()
        log_det = 2 * self.scale_tril.diagonal().log().sum()
        trace = self.scale_tril.square().sum()
        return 0.5 * (trace / var_p + loc.square().sum() / var_p - size
                      + size * math.log(var_p) - log_det)

    def elbo_penalty(self, var: torch.Tensor, num_data: int) -> torch.Tensor:
        """What the ELBO adds to ``0.5 * squared error`` for a batch whose values have epistemic
        variance ``var`` (from :meth:`forward`): ``0.5 * mean(var) + KL / num_data``."""
        return 0.5 * var.mean() + self.kl_divergence() / num_data

    @torch.no_grad()
    def std(self, y: torch.Tensor) -> torch.Tensor:
        """Epistemic standard deviation of the value at features ``y`` ``[..., D]`` -> ``[...]``."""
        return self(y)[1].sqrt().squeeze(-1)


def unvisited_probe(space, count: int, bound: float, generator: torch.Generator,
                    device: torch.device) -> torch.Tensor | None:
    """Observations drawn uniformly from a Box observation space, infinite bounds cut at
    ``±bound``: mostly states a policy never visits, where a value head should stay uncertain.
    ``None`` for other spaces."""
    import gymnasium as gym
    import numpy as np

    if not isinstance(space, gym.spaces.Box):
        return None
    low = torch.as_tensor(np.clip(space.low, -bound, bound), dtype=torch.float32)
    high = torch.as_tensor(np.clip(space.high, -bound, bound), dtype=torch.float32)
    u = torch.rand((count, *space.shape), generator=generator)
    return (low + u * (high - low)).to(device)


class ThompsonLinear(nn.Module):
    """The policy head's last layer with Bayesian weights, one weight sample per episode.

    Thompson-style exploration: each copy draws one weight set from the guide when its episode
    starts and acts with it until the episode ends, so exploration is consistent over an episode
    rather than independent per step. The draw is kept as noise ``eps`` (``W = loc + scale * eps``,
    :meth:`bayes.heads.BayesianHead.weights_from_noise`); the rollout stores it and the update
    recomputes the same weights with gradients, so the ratio-equals-one invariant holds. Without
    noise (evaluation, :meth:`agents.policies.ActorCritic.predict`) the layer uses the posterior
    mean. PPO adds the guide's ``KL(q || prior) / N`` to its loss.

    Args:
        in_features, out_features: Sizes of the replaced ``nn.Linear``.
        init: The layer whose weight and bias initialise the guide's means.
        init_scale: Initial weight std of the guide.
        prior_scale: Std of the Normal prior on every weight.

    Shapes:
        ``y`` ``[..., in]`` and ``noise`` ``[..., noise_size]`` (the same leading shape) ->
        ``[..., out]``; without ``noise`` the posterior mean's output.
    """

    def __init__(self, init: nn.Linear, init_scale: float = 0.05, prior_scale: float = 0.1):
        super().__init__()
        out_features, in_features = init.weight.shape
        self.linear = BayesianLinear(in_features, out_features, prior_scale=prior_scale)
        with torch.no_grad():
            for name, param in self.linear.named_parameters():
                if ".locs." in f".{name}":
                    param.copy_(init.weight if "weight" in name else init.bias)
                elif ".scales." in f".{name}":
                    to_scale = transform_to(self.linear.guide.scale_constraint)
                    param.fill_(float(to_scale.inv(torch.tensor(init_scale))))
        self.noise_size = out_features * in_features + out_features

    def sample_noise(self, batch: int) -> torch.Tensor:
        """Fresh noise for ``batch`` copies: ``[batch, noise_size]``."""
        eps_w, eps_b = self.linear.sample_noise(batch)
        return torch.cat((eps_w.flatten(1), eps_b), dim=1)

    def forward(self, y: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            p = self.linear.loc_and_scale()
            return nn.functional.linear(y, p.weight_loc, p.bias_loc)
        out, inp = self.linear.out_features, self.linear.in_features
        eps_w = noise[..., : out * inp].unflatten(-1, (out, inp))
        w, b = self.linear.weights_from_noise(eps_w, noise[..., out * inp :])
        return torch.einsum("...oi,...i->...o", w, y) + b

    def kl_divergence(self) -> torch.Tensor:
        return self.linear.kl_divergence()
