"""Bayesian linear heads: Pyro models with an autoguide, trained inside a torch optimiser.

Generative story of :class:`BayesianLinear` (a regression head, e.g. a value head)::

    W ~ Normal(0, prior_scale)        [out, in]
    b ~ Normal(0, prior_scale)        [out]
    y_n ~ Normal(W x_n + b, noise_scale)   for each data point n

The posterior over ``(W, b)`` is approximated by a mean-field
:class:`~pyro.infer.autoguide.AutoNormal` guide, which is a submodule of the head, so
``head.parameters()`` and ``head.state_dict()`` are the guide's variational parameters and an
ordinary torch optimiser trains them. The mean-field guide tends to under-estimate posterior
variance; the uncertainty is useful for ranking inputs, not as exact credible intervals.

KL weighting (the "standard N / batch likelihood scaling"): the likelihood of a mini-batch of
``B`` points is scaled by ``num_data / B`` so the ELBO estimates the full-data ELBO
``sum_n E_q[log p(y_n | x_n, W, b)] - KL(q || p)``; :meth:`BayesianLinear.loss` then divides by
``num_data``, so per data point the loss is ``mean negative log-likelihood + KL / num_data``.
The KL weight is thus ``1 / num_data``: the prior matters less the more data the head has seen.
"""

from __future__ import annotations

import itertools
import weakref

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import Trace_ELBO
from pyro.infer.autoguide import AutoNormal
from pyro.nn import PyroModule, PyroSample
from torch import nn

__all__ = ["BayesianLinear", "train_bayesian_head"]

_LIVE_HEADS: weakref.WeakValueDictionary[str, BayesianLinear] = weakref.WeakValueDictionary()
_COUNTER = itertools.count()


def _unique_default_name() -> str:
    while True:
        name = f"bayes_linear_{next(_COUNTER)}"
        if name not in _LIVE_HEADS:
            return name


class BayesianLinear(PyroModule[nn.Linear]):
    r"""A linear layer with Normal priors on its weight and bias and a Gaussian likelihood.

    .. math::
        W_{ij} \sim \mathcal N(0, \sigma_p^2),\quad b_i \sim \mathcal N(0, \sigma_p^2),\quad
        y \mid x \sim \mathcal N(W x + b, \sigma_y^2 I)

    The guide is an :class:`~pyro.infer.autoguide.AutoNormal` stored as ``self.guide``. Every
    Pyro name (sample sites and guide parameters) starts with ``name``, so two heads never
    share parameters through Pyro's global param store; constructing a second live head with the
    same name raises. The guide is set up in ``__init__`` (so ``parameters()`` and
    ``load_state_dict`` work at once); put the head inside plain ``nn.Module`` parents, not inside
    another ``PyroModule``, which would rename it after use.

    Args:
        in_features: Input size.
        out_features: Output size.
        prior_scale: Standard deviation :math:`\sigma_p` of the Normal priors (default 1.0).
        noise_scale: Fixed observation noise :math:`\sigma_y` of the likelihood (default 0.1).
        name: Prefix of every Pyro name of this head; ``None`` picks a unique
            ``"bayes_linear_<k>"``. Give a fixed name when the head is saved and resumed, since
            ``state_dict`` keys contain it.

    Shapes:
        - ``x``: ``[B, in_features]``
        - ``y``: ``[B, out_features]``
        - :meth:`predict` returns mean and std of shape ``[B, out_features]``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        prior_scale: float = 1.0,
        noise_scale: float = 0.1,
        name: str | None = None,
    ) -> None:
        if in_features < 1 or out_features < 1:
            raise ValueError(
                f"in_features and out_features must be >= 1, got {in_features}, {out_features}."
            )
        if prior_scale <= 0 or noise_scale <= 0:
            raise ValueError(
                f"prior_scale and noise_scale must be > 0, got {prior_scale}, {noise_scale}."
            )
        if name is None:
            name = _unique_default_name()
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"name must be a non-empty string without dots, got {name!r}.")
        if name in _LIVE_HEADS:
            raise ValueError(
                f"a BayesianLinear named {name!r} already exists in this process; two heads with "
                "one name would share parameters through Pyro's param store. Pick another name "
                "or delete the old head first."
            )
        super().__init__(in_features, out_features)
        self._pyro_name = name
        self.prior_scale = float(prior_scale)
        self.noise_scale = float(noise_scale)
        # Priors replace nn.Linear's deterministic weight and bias.
        self.weight = PyroSample(
            dist.Normal(0.0, self.prior_scale).expand([out_features, in_features]).to_event(2)
        )
        self.bias = PyroSample(
            dist.Normal(0.0, self.prior_scale).expand([out_features]).to_event(1)
        )
        # Drop stale store entries (e.g. from a deleted head of the same name) so this head uses
        # its own tensors, then build the guide's parameters now so that an optimiser and
        # load_state_dict see them before the first training step.
        for key in list(pyro.get_param_store().keys()):
            if key.startswith(name + "."):
                del pyro.get_param_store()[key]
        self.guide = AutoNormal(self)
        with pyro.poutine.block(), torch.no_grad():
            self.guide(torch.zeros(1, in_features), torch.zeros(1, out_features))
        _LIVE_HEADS[name] = self

    @property
    def name(self) -> str:
        """The prefix of every Pyro name of this head."""
        return self._pyro_name

    def _check_x(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != self.in_features:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"x must be a tensor of shape [B, {self.in_features}], got {shape}; "
                "use x.reshape(-1, in_features) for a flat batch."
            )

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None, num_data: int | None = None
    ) -> torch.Tensor:
        """The Pyro model: one weight sample, the mean ``W x + b`` and the scaled likelihood.

        Args:
            x: Inputs ``[B, in_features]``.
            y: Targets ``[B, out_features]``, or ``None`` to only sample.
            num_data: Size of the whole data set; the likelihood is scaled by ``num_data / B``.
                Defaults to ``B``.

        Returns:
            The mean ``[B, out_features]`` under the sampled weights.
        """
        # "..." carries the particle dimension of vectorised ELBO particles.
        mean = torch.einsum("...oi,bi->...bo", self.weight, x) + self.bias[..., None, :]
        batch = x.shape[0]
        scale = 1.0 if num_data is None else num_data / batch
        # The batch is one event (no plate): the guide then has no plate whose size could be
        # frozen at set-up, and the N / B scaling is explicit.
        with pyro.poutine.scale(scale=scale):
            pyro.sample(f"{self.name}.obs", dist.Normal(mean, self.noise_scale).to_event(2), obs=y)
        return mean

    def loss(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        num_data: int | None = None,
        num_particles: int = 1,
    ) -> torch.Tensor:
        """Differentiable negative ELBO per data point (see the module docstring).

        ``Trace_ELBO(num_particles).differentiable_loss(model, guide, ...) / num_data``; add it to
        any other loss and step an ordinary torch optimiser over ``head.parameters()``.

        Args:
            x: Inputs ``[B, in_features]``.
            y: Targets ``[B, out_features]``.
            num_data: Size of the whole training set (default ``B``).
            num_particles: Weight samples per estimate, drawn in one vectorised pass (default
                1); more particles give less noisy gradients for the variational scales.

        Returns:
            A scalar tensor.
        """
        self._check_x(x)
        if y.shape != (x.shape[0], self.out_features):
            raise ValueError(
                f"y must have shape [{x.shape[0]}, {self.out_features}], got {tuple(y.shape)}."
            )
        n = x.shape[0] if num_data is None else int(num_data)
        if n < x.shape[0]:
            raise ValueError(f"num_data ({n}) must be at least the batch size ({x.shape[0]}).")
        if num_particles < 1:
            raise ValueError(f"num_particles must be >= 1, got {num_particles}.")
        elbo = Trace_ELBO(
            num_particles=num_particles, vectorize_particles=num_particles > 1, max_plate_nesting=0
        )
        return elbo.differentiable_loss(self, self.guide, x, y, n) / n

    def posterior_samples(
        self, num_samples: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw weight and bias samples from the guide as tensors.

        Returns:
            ``(W, b)`` of shapes ``[S, out, in]`` and ``[S, out]``.
        """
        w_loc, w_scale = self.guide._get_loc_and_scale(f"{self.name}.weight")
        b_loc, b_scale = self.guide._get_loc_and_scale(f"{self.name}.bias")
        kw = {"generator": generator, "device": w_loc.device, "dtype": w_loc.dtype}
        eps_w = torch.randn((num_samples, *w_loc.shape), **kw)
        eps_b = torch.randn((num_samples, *b_loc.shape), **kw)
        return w_loc + w_scale * eps_w, b_loc + b_scale * eps_b

    @torch.no_grad()
    def predict(
        self,
        x: torch.Tensor,
        num_samples: int = 64,
        include_noise: bool = False,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Predictive mean and standard deviation from ``num_samples`` weight samples at once.

        All samples go through one batched ``einsum`` (no Python loop):
        :math:`f_s(x) = W_s x + b_s`, mean :math:`\bar f = \frac1S\sum_s f_s`, epistemic std
        :math:`\sqrt{\frac1S\sum_s (f_s - \bar f)^2}`.

        Args:
            x: Inputs ``[B, in_features]``.
            num_samples: Number of weight samples ``S`` (default 64).
            include_noise: Add the observation noise variance to the std (total rather than
                epistemic uncertainty).
            generator: Optional torch generator for reproducible samples.

        Returns:
            ``(mean, std)``, each ``[B, out_features]``.
        """
        self._check_x(x)
        if num_samples < 2:
            raise ValueError(f"num_samples must be >= 2 to estimate a std, got {num_samples}.")
        w, b = self.posterior_samples(num_samples, generator)
        f = torch.einsum("soi,bi->sbo", w, x) + b[:, None, :]
        mean = f.mean(0)
        var = f.var(0, unbiased=False)
        if include_noise:
            var = var + self.noise_scale**2
        return mean, var.sqrt()

    def extra_repr(self) -> str:
        return (
            f"name={self.name!r}, in_features={self.in_features}, "
            f"out_features={self.out_features}, prior_scale={self.prior_scale}, "
            f"noise_scale={self.noise_scale}"
        )


def train_bayesian_head(
    head: BayesianLinear,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int = 500,
    lr: float = 0.05,
    batch_size: int | None = None,
    num_particles: int = 1,
    generator: torch.Generator | None = None,
) -> list[float]:
    """Fit a head's guide with Adam on the per-datum negative ELBO (:meth:`BayesianLinear.loss`).

    Args:
        head: The head to train.
        x: Training inputs ``[N, in_features]``.
        y: Training targets ``[N, out_features]``.
        steps: Optimiser steps (default 500).
        lr: Adam learning rate (default 0.05).
        batch_size: Mini-batch size; ``None`` uses the full data set. The likelihood is scaled
            by ``N / batch_size``.
        num_particles: ELBO particles per step (see :meth:`BayesianLinear.loss`).
        generator: Optional generator for the mini-batch indices.

    Returns:
        The loss of every step.
    """
    n = x.shape[0]
    batch = n if batch_size is None else min(int(batch_size), n)
    if batch < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        if batch < n:
            idx = torch.randperm(n, generator=generator)[:batch]
            xb, yb = x[idx], y[idx]
        else:
            xb, yb = x, y
        opt.zero_grad()
        loss = head.loss(xb, yb, num_data=n, num_particles=num_particles)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses
