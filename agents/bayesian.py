"""Bayesian heads inside PPO: a value head that knows what it has not seen.

:class:`BayesianValueHead` replaces the critic's final ``Linear(D, 1)`` by a Pyro
:class:`bayes.heads.BayesianLinear` (Normal priors on weight and bias, a mean-field
``AutoNormal`` guide). Its value is the posterior-mean prediction, so the rollout, GAE and the
ratio-equals-one invariant see a deterministic number; its epistemic standard deviation is exact
for the mean-field Gaussian guide (no sampling):

.. math::
    \\mathrm{Var}[V(x)] = \\sum_i x_i^2\\, \\sigma_{W,i}^2 + \\sigma_b^2 .

Training uses the head's ELBO with a unit-variance Gaussian likelihood on the returns. Under the
mean-field guide its expectation is closed form, which PPO adds to its (clipped) squared error::

    -ELBO / N = 0.5 * (returns - mean)^2 + 0.5 * var + KL(q || prior) / N  (+ const)

with ``N`` the samples of one rollout (the KL weight shrinks with the data, as in
:mod:`bayes.heads`). The uncertainty is logged as ``uncertainty/value_std`` and can be added to the
reward as an exploration bonus (``PPOConfig.uncertainty_bonus``).
"""

from __future__ import annotations

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
    """The (unconstrained) scale parameters of every Pyro autoguide inside ``module``."""
    return [p for name, p in module.named_parameters() if ".guide.scales." in f".{name}"]


class BayesianValueHead(nn.Module):
    """The critic's last layer as a Bayesian linear regression on the critic's features.

    Args:
        in_features: Width of the critic's features.
        prior_scale: Standard deviation of the Normal priors on weights and bias.

    Attributes:
        last_std: Epistemic standard deviation of the values of the last ``forward`` call
            (same shape as its output), for logging and the exploration bonus.
        last_var: The variance behind it, still in the autograd graph (the ELBO's variance term).

    Shapes:
        ``y`` ``[..., in_features]`` -> value ``[..., 1]``.
    """

    def __init__(self, in_features: int, prior_scale: float = 1.0):
        super().__init__()
        self.linear = BayesianLinear(in_features, 1, prior_scale=prior_scale, noise_scale=1.0)
        self.last_std: torch.Tensor | None = None
        self.last_var: torch.Tensor | None = None

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        mean, std = self.linear.posterior_mean_and_std(y)
        self.last_var = std.square()
        self.last_std = std.detach()
        return mean

    def elbo_penalty(self, num_data: int) -> torch.Tensor:
        """What the ELBO adds to ``0.5 * squared error`` for the last ``forward`` call:
        ``0.5 * mean(var) + KL / num_data``."""
        if self.last_var is None:
            raise RuntimeError("call the head on a batch before asking for its ELBO terms")
        return 0.5 * self.last_var.mean() + self.linear.kl_divergence() / num_data

    @torch.no_grad()
    def std(self, y: torch.Tensor) -> torch.Tensor:
        """Epistemic standard deviation of the value at features ``y`` (no side effects)."""
        return self.linear.posterior_mean_and_std(y)[1].squeeze(-1)


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

    Attributes:
        noise: Set by the policy around a call: ``[..., noise_size]`` matching the input's leading
            shape, or ``None`` for the posterior mean.
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
        self.noise: torch.Tensor | None = None

    def sample_noise(self, batch: int) -> torch.Tensor:
        """Fresh noise for ``batch`` copies: ``[batch, noise_size]``."""
        eps_w, eps_b = self.linear.sample_noise(batch)
        return torch.cat((eps_w.flatten(1), eps_b), dim=1)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        p = self.linear.loc_and_scale()
        if self.noise is None:
            return nn.functional.linear(y, p.weight_loc, p.bias_loc)
        out, inp = self.linear.out_features, self.linear.in_features
        eps_w = self.noise[..., : out * inp].unflatten(-1, (out, inp))
        w, b = self.linear.weights_from_noise(eps_w, self.noise[..., out * inp :])
        return torch.einsum("...oi,...i->...o", w, y) + b

    def kl_divergence(self) -> torch.Tensor:
        return self.linear.kl_divergence()
