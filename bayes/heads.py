"""Bayesian linear heads: Pyro models with an autoguide, trained inside a torch optimiser.

Both heads share one base, :class:`BayesianHead` (priors, guide and the closed forms below), and
differ only in their likelihood on ``f(x) = W x + b``:

- :class:`BayesianLinear`, a regression head (e.g. a value head)::

      W ~ Normal(0, prior_scale)        [out, in]
      b ~ Normal(0, prior_scale)        [out]
      y_n ~ Normal(W x_n + b, noise_scale)   for each data point n

- :class:`BayesianClassifier`, a classification head (e.g. on GNN node embeddings), with the
  same priors and ``label_n ~ Categorical(logits=W x_n + b)``.

The posterior over ``(W, b)`` is approximated by a mean-field
:class:`~pyro.infer.autoguide.AutoNormal` guide, which is a submodule of the head, so
``head.parameters()`` and ``head.state_dict()`` are the guide's variational parameters and an
ordinary torch optimiser trains them. The mean-field guide tends to under-estimate posterior
variance; the uncertainty is useful for ranking inputs, not as exact credible intervals.

KL weighting (the "standard N / batch likelihood scaling"): the likelihood of a mini-batch of
``B`` points is scaled by ``num_data / B`` so the ELBO estimates the full-data ELBO
``sum_n E_q[log p(y_n | x_n, W, b)] - KL(q || p)``; :meth:`BayesianHead.loss` then divides by
``num_data``, so per data point the loss is ``mean negative log-likelihood + KL / num_data``.
The KL weight is thus ``1 / num_data``: the prior matters less the more data the head has seen.

Closed forms under the guide ``q(W_oi) = N(mu_oi, s_oi^2)``, ``q(b_o) = N(nu_o, t_o^2)``, for
losses and policies built by hand (a Bayesian value head, Thompson sampling in PPO), all
differentiable in the guide's parameters:

- :meth:`BayesianHead.posterior_mean_and_std`: ``f_o(x)`` is exactly Gaussian with mean
  ``sum_i mu_oi x_i + nu_o`` and variance ``sum_i x_i^2 s_oi^2 + t_o^2`` (epistemic only).
- :meth:`BayesianHead.kl_divergence`: ``KL(q || p)`` summed over every weight and bias.
- :meth:`BayesianHead.weights_from_noise`: ``(W, b) = loc + scale * eps`` for stored noise
  ``eps`` (:meth:`BayesianHead.sample_noise`), so an update recomputes the very weights a
  rollout sampled.

Parameters are the head's own: every head is built and called with Pyro's module-local
parameters (``pyro.settings.context(module_local_params=True)``, the previous setting restored
after each call), so its guide's parameters are plain ``nn.Parameter`` objects that never go
through Pyro's global param store, and two heads never share them. Every head can therefore
carry the same Pyro name, ``head`` (sample sites ``head.weight``, ``head.bias``, ``head.obs``;
guide keys ``guide.locs.head.weight_unconstrained``...): a state dict loads strictly into any
head of the same shape, in any process, and ``copy.deepcopy`` and pickling work as for any
``nn.Module``. The setting is process-wide while a head's Pyro code runs, so do not run other
Pyro code in another thread at the same time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.infer import Trace_ELBO
from pyro.infer.autoguide import AutoNormal
from pyro.nn import PyroModule, PyroSample
from torch import nn

__all__ = [
    "BayesianClassifier",
    "BayesianHead",
    "BayesianLinear",
    "GuideParams",
    "PredictiveUncertainty",
    "train_bayesian_head",
]


class _ModuleLocalParams:
    """Mixin for a ``PyroModule``: every call runs with Pyro's module-local parameters."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with pyro.settings.context(module_local_params=True):
            return super().__call__(*args, **kwargs)


class _Guide(_ModuleLocalParams, AutoNormal):
    """:class:`~pyro.infer.autoguide.AutoNormal`, called with module-local parameters."""


def _load_legacy_keys(
    module: nn.Module, state_dict: dict[str, Any], prefix: str, *_args: Any
) -> None:
    """Rename ``guide.{locs,scales}.<name>.*`` to ``...head.*`` when the latter is absent.

    Checkpoints written before every head was named ``head`` carry the head's own Pyro name
    there.
    """
    for group in ("locs", "scales"):
        stem = f"{prefix}guide.{group}."
        for key in [k for k in state_dict if k.startswith(stem)]:
            name, _, leaf = key[len(stem) :].partition(".")
            new = f"{stem}head.{leaf}"
            if name != "head" and "." not in leaf and new not in state_dict:
                state_dict[new] = state_dict.pop(key)


class GuideParams(NamedTuple):
    """The mean-field guide's parameters (constrained, differentiable): ``q = N(loc, scale^2)``.

    Shapes: ``weight_loc``, ``weight_scale`` ``[out, in]``; ``bias_loc``, ``bias_scale``
    ``[out]``.
    """

    weight_loc: torch.Tensor
    weight_scale: torch.Tensor
    bias_loc: torch.Tensor
    bias_scale: torch.Tensor


class PredictiveUncertainty(NamedTuple):
    r"""A classifier's Monte Carlo predictive and its entropy decomposition (in nats).

    With per-sample class probabilities :math:`p_s = \mathrm{softmax}(W_s x + b_s)`:
    ``entropy`` :math:`= H[\bar p]` with :math:`\bar p = \frac1S \sum_s p_s` (total),
    ``expected_entropy`` :math:`= \frac1S \sum_s H[p_s]` (aleatoric) and
    ``mutual_information`` :math:`= H[\bar p] - \frac1S\sum_s H[p_s] \ge 0` (epistemic: the
    information the label would give about the weights; Houlsby et al. 2011, "BALD").

    Shapes: ``probs`` ``[B, C]``; the others ``[B]``.
    """

    probs: torch.Tensor
    entropy: torch.Tensor
    expected_entropy: torch.Tensor
    mutual_information: torch.Tensor


class BayesianHead(_ModuleLocalParams, PyroModule):
    r"""Base of the Bayesian linear heads: Normal priors, a mean-field guide, closed forms.

    .. math::
        W_{oi} \sim \mathcal N(0, \sigma_p^2),\quad b_o \sim \mathcal N(0, \sigma_p^2),\quad
        f(x) = W x + b,

    with a likelihood on :math:`f(x)` chosen by the subclass (:class:`BayesianLinear`,
    :class:`BayesianClassifier`). The guide is an :class:`~pyro.infer.autoguide.AutoNormal`
    stored as ``self.guide``: :math:`q(W_{oi}) = \mathcal N(\mu_{oi}, s_{oi}^2)`,
    :math:`q(b_o) = \mathcal N(\nu_o, t_o^2)`. The guide is set up in ``__init__`` (so
    ``parameters()`` and ``load_state_dict`` work at once); put the head inside plain
    ``nn.Module`` parents, not inside another ``PyroModule``, which would rename it. Parameters,
    Pyro names and state dicts: see the module docstring.

    Subclasses define ``_likelihood``, ``_check_target`` and ``_dummy_target`` and call
    ``self._build_guide()`` at the end of their ``__init__``.

    Args:
        in_features: Input size.
        out_features: Output size.
        prior_scale: Standard deviation :math:`\sigma_p` of the Normal priors (default 1.0).
    """

    def __init__(self, in_features: int, out_features: int, prior_scale: float = 1.0) -> None:
        if in_features < 1 or out_features < 1:
            raise ValueError(
                f"in_features and out_features must be >= 1, got {in_features}, {out_features}."
            )
        if not prior_scale > 0:
            raise ValueError(f"prior_scale must be > 0, got {prior_scale}.")
        with pyro.settings.context(module_local_params=True):
            super().__init__(name="head")
        self.in_features = in_features
        self.out_features = out_features
        self.prior_scale = float(prior_scale)
        self.weight = PyroSample(
            dist.Normal(0.0, self.prior_scale).expand([out_features, in_features]).to_event(2)
        )
        self.bias = PyroSample(
            dist.Normal(0.0, self.prior_scale).expand([out_features]).to_event(1)
        )
        self.register_load_state_dict_pre_hook(_load_legacy_keys)

    def _build_guide(self) -> None:
        """Create the guide's parameters now, so optimisers and ``load_state_dict`` see them."""
        with pyro.settings.context(module_local_params=True):
            self.guide = _Guide(self)
        with pyro.poutine.block(), torch.no_grad():
            self.guide(torch.zeros(1, self.in_features), self._dummy_target())

    # ---- subclass interface -------------------------------------------------------------------

    def _likelihood(self, f: torch.Tensor) -> dist.TorchDistribution:
        """The distribution of the targets of a batch given ``f = W x + b`` ``[..., B, out]``."""
        raise NotImplementedError

    def _check_target(self, target: torch.Tensor, batch: int) -> None:
        raise NotImplementedError

    def _dummy_target(self) -> torch.Tensor:
        """An observed target for a batch of one, to set the guide up."""
        raise NotImplementedError

    # ---- Pyro model and loss ------------------------------------------------------------------

    def _check_x(self, x: torch.Tensor, any_leading: bool = False) -> None:
        ok = isinstance(x, torch.Tensor) and x.ndim >= 1 and x.shape[-1] == self.in_features
        if ok and not any_leading:
            ok = x.ndim == 2
        if not ok:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            expected = "[..., {}]" if any_leading else "[B, {}]"
            raise ValueError(
                f"x must be a tensor of shape {expected.format(self.in_features)}, got {shape}"
                + ("." if any_leading else "; use x.reshape(-1, in_features) for a flat batch.")
            )

    def forward(
        self, x: torch.Tensor, target: torch.Tensor | None = None, num_data: int | None = None
    ) -> torch.Tensor:
        """The Pyro model: one weight sample, ``f = W x + b`` and the scaled likelihood.

        Args:
            x: Inputs ``[B, in_features]``.
            target: Observed targets (see the subclass), or ``None`` to only sample.
            num_data: Size of the whole data set; the likelihood is scaled by ``num_data / B``.
                Defaults to ``B``.

        Returns:
            ``f`` ``[B, out_features]`` under the sampled weights (means or logits).
        """
        # "..." carries the particle dimension of vectorised ELBO particles.
        f = torch.einsum("...oi,bi->...bo", self.weight, x) + self.bias[..., None, :]
        batch = x.shape[0]
        scale = 1.0 if num_data is None else num_data / batch
        # The batch is one event (no plate): the guide then has no plate whose size could be
        # frozen at set-up, and the N / B scaling is explicit.
        with pyro.poutine.scale(scale=scale):
            pyro.sample("head.obs", self._likelihood(f), obs=target)
        return f

    def loss(
        self,
        x: torch.Tensor,
        target: torch.Tensor,
        num_data: int | None = None,
        num_particles: int = 1,
    ) -> torch.Tensor:
        """Differentiable negative ELBO per data point (see the module docstring).

        ``Trace_ELBO(num_particles).differentiable_loss(model, guide, ...) / num_data``; add it to
        any other loss and step an ordinary torch optimiser over ``head.parameters()``.

        Args:
            x: Inputs ``[B, in_features]``.
            target: Targets ``y`` ``[B, out_features]`` (float) for :class:`BayesianLinear`,
                class indices ``labels`` ``[B]`` (int64) for :class:`BayesianClassifier`.
            num_data: Size of the whole training set (default ``B``).
            num_particles: Weight samples per estimate, drawn in one vectorised pass (default
                1); more particles give less noisy gradients for the variational scales.

        Returns:
            A scalar tensor.
        """
        self._check_x(x)
        self._check_target(target, x.shape[0])
        n = x.shape[0] if num_data is None else int(num_data)
        if n < x.shape[0]:
            raise ValueError(f"num_data ({n}) must be at least the batch size ({x.shape[0]}).")
        if num_particles < 1:
            raise ValueError(f"num_particles must be >= 1, got {num_particles}.")
        elbo = Trace_ELBO(
            num_particles=num_particles, vectorize_particles=num_particles > 1, max_plate_nesting=0
        )
        return elbo.differentiable_loss(self, self.guide, x, target, n) / n

    # ---- the guide as tensors -----------------------------------------------------------------

    def loc_and_scale(self) -> GuideParams:
        """The guide's locations and scales as differentiable tensors (a :class:`GuideParams`).

        Read from the guide's ``locs`` and ``scales`` modules: the constrained values of its
        parameters (the scales are ``softplus`` of the unconstrained ones).
        """
        locs, scales = self.guide.locs.head, self.guide.scales.head
        return GuideParams(locs.weight, scales.weight, locs.bias, scales.bias)

    def sample_noise(
        self, sample_shape: int | Sequence[int] = (), generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Standard-normal noise for :meth:`weights_from_noise`, on the guide's device and dtype.

        Args:
            sample_shape: Leading shape ``S`` of the noise (e.g. ``num_envs``); default ``()``.
            generator: Optional torch generator for reproducible noise.

        Returns:
            ``(eps_w, eps_b)`` of shapes ``[*S, out, in]`` and ``[*S, out]``.
        """
        shape = (sample_shape,) if isinstance(sample_shape, int) else tuple(sample_shape)
        loc = self.loc_and_scale().weight_loc
        kw = {"generator": generator, "device": loc.device, "dtype": loc.dtype}
        eps_w = torch.randn((*shape, self.out_features, self.in_features), **kw)
        eps_b = torch.randn((*shape, self.out_features), **kw)
        return eps_w, eps_b

    def weights_from_noise(
        self, eps_w: torch.Tensor, eps_b: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised weights ``W = mu + s * eps_w``, ``b = nu + t * eps_b``.

        Differentiable in the guide's parameters: keep the noise of a rollout and call this
        again in the update to get the same weights with gradients.

        Args:
            eps_w: Noise ``[*S, out, in]``.
            eps_b: Noise ``[*S, out]`` with the same leading shape ``S``.

        Returns:
            ``(W, b)`` of shapes ``[*S, out, in]`` and ``[*S, out]``.
        """
        out, inp = self.out_features, self.in_features
        if (
            eps_w.ndim < 2
            or eps_w.shape[-2:] != (out, inp)
            or eps_b.shape != eps_w.shape[:-2] + (out,)
        ):
            raise ValueError(
                f"eps_w and eps_b must have shapes [*S, {out}, {inp}] and [*S, {out}] with the "
                f"same S, got {tuple(eps_w.shape)} and {tuple(eps_b.shape)}; draw them with "
                "sample_noise(S)."
            )
        p = self.loc_and_scale()
        return p.weight_loc + p.weight_scale * eps_w, p.bias_loc + p.bias_scale * eps_b

    def posterior_samples(
        self, num_samples: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw weight and bias samples from the guide as (differentiable) tensors.

        Returns:
            ``(W, b)`` of shapes ``[S, out, in]`` and ``[S, out]``.
        """
        return self.weights_from_noise(*self.sample_noise(num_samples, generator))

    def posterior_mean_and_std(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Exact mean and epistemic std of ``f(x) = W x + b`` under the guide (no sampling).

        .. math::
            \mathbb E_q[f_o(x)] = \sum_i \mu_{oi} x_i + \nu_o,\qquad
            \mathrm{Var}_q[f_o(x)] = \sum_i x_i^2 s_{oi}^2 + t_o^2.

        Differentiable in ``x`` and the guide's parameters (e.g. a Bayesian value head's
        prediction and an uncertainty bonus). For :class:`BayesianLinear` the observation noise
        is not included; add ``noise_scale**2`` to the variance for the total.

        Args:
            x: Inputs ``[..., in_features]``.

        Returns:
            ``(mean, std)``, each ``[..., out_features]``.
        """
        self._check_x(x, any_leading=True)
        p = self.loc_and_scale()
        mean = F.linear(x, p.weight_loc, p.bias_loc)
        var = F.linear(x.square(), p.weight_scale.square(), p.bias_scale.square())
        return mean, var.sqrt()

    def kl_divergence(self) -> torch.Tensor:
        r"""Closed-form :math:`\mathrm{KL}(q \,\|\, p)` summed over every weight and bias.

        For each scalar with guide :math:`\mathcal N(\mu, s^2)` and prior
        :math:`\mathcal N(0, \sigma_p^2)`:
        :math:`\log\frac{\sigma_p}{s} + \frac{s^2 + \mu^2}{2\sigma_p^2} - \frac12`.
        Differentiable; :meth:`loss` estimates the same term by sampling, this is exact.

        Returns:
            A scalar tensor.
        """
        p = self.loc_and_scale()
        var_p = self.prior_scale**2
        total = 0.0
        for loc, scale in ((p.weight_loc, p.weight_scale), (p.bias_loc, p.bias_scale)):
            log_ratio = math.log(self.prior_scale) - scale.log()
            total = total + (log_ratio + (scale.square() + loc.square()) / (2 * var_p) - 0.5).sum()
        return total

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"prior_scale={self.prior_scale}"
        )


class BayesianLinear(BayesianHead):
    r"""A linear layer with Normal priors on its weight and bias and a Gaussian likelihood.

    .. math::
        W_{ij} \sim \mathcal N(0, \sigma_p^2),\quad b_i \sim \mathcal N(0, \sigma_p^2),\quad
        y \mid x \sim \mathcal N(W x + b, \sigma_y^2 I)

    Priors, guide, naming, state dicts and the closed forms are those of :class:`BayesianHead`.

    Args:
        in_features: Input size.
        out_features: Output size.
        prior_scale: Standard deviation :math:`\sigma_p` of the Normal priors (default 1.0).
        noise_scale: Fixed observation noise :math:`\sigma_y` of the likelihood (default 0.1).

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
    ) -> None:
        if not noise_scale > 0:
            raise ValueError(f"noise_scale must be > 0, got {noise_scale}.")
        super().__init__(in_features, out_features, prior_scale)
        self.noise_scale = float(noise_scale)
        self._build_guide()

    def _likelihood(self, f: torch.Tensor) -> dist.TorchDistribution:
        return dist.Normal(f, self.noise_scale).to_event(2)

    def _check_target(self, target: torch.Tensor, batch: int) -> None:
        if not isinstance(target, torch.Tensor) or target.shape != (batch, self.out_features):
            shape = tuple(target.shape) if isinstance(target, torch.Tensor) else type(target)
            raise ValueError(f"y must have shape [{batch}, {self.out_features}], got {shape}.")

    def _dummy_target(self) -> torch.Tensor:
        return torch.zeros(1, self.out_features)

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
        :math:`\sqrt{\frac1S\sum_s (f_s - \bar f)^2}`. :meth:`posterior_mean_and_std` gives the
        same two quantities exactly and differentiably.

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
        return f"{super().extra_repr()}, noise_scale={self.noise_scale}"


class BayesianClassifier(BayesianHead):
    r"""A linear classifier with Normal priors on its weight and bias (Bayesian softmax regression).

    .. math::
        W_{ci} \sim \mathcal N(0, \sigma_p^2),\quad b_c \sim \mathcal N(0, \sigma_p^2),\quad
        \text{label} \mid x \sim \mathrm{Categorical}(\mathrm{softmax}(W x + b))

    E.g. a classification head on GNN node embeddings: train with :meth:`loss` (or
    :func:`train_bayesian_head`), predict with :meth:`predict_probs`, and rank inputs by
    epistemic uncertainty with :meth:`predictive_uncertainty` (mutual information). Priors,
    guide, naming, state dicts and the closed forms (on the logits) are those of
    :class:`BayesianHead`.

    The prediction methods are differentiable (in ``x`` and the guide); wrap them in
    ``torch.no_grad()`` for evaluation. Label checks in :meth:`loss` read the labels' range,
    which synchronises with a GPU.

    Args:
        in_features: Input size.
        num_classes: Number of classes ``C`` (>= 2); the logits are ``[B, C]``.
        prior_scale: Standard deviation :math:`\sigma_p` of the Normal priors (default 1.0).

    Shapes:
        - ``x``: ``[B, in_features]``
        - ``labels``: ``[B]``, int64 in ``[0, num_classes)``
        - :meth:`predict_probs` returns ``[B, C]``; :meth:`sample_probs` ``[S, B, C]``.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        prior_scale: float = 1.0,
    ) -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}.")
        super().__init__(in_features, num_classes, prior_scale)
        self._build_guide()

    @property
    def num_classes(self) -> int:
        """Number of classes ``C``."""
        return self.out_features

    def _likelihood(self, f: torch.Tensor) -> dist.TorchDistribution:
        return dist.Categorical(logits=f).to_event(1)

    def _check_target(self, target: torch.Tensor, batch: int) -> None:
        if not isinstance(target, torch.Tensor) or target.shape != (batch,):
            shape = tuple(target.shape) if isinstance(target, torch.Tensor) else type(target)
            raise ValueError(
                f"labels must have shape [{batch}] (one class index per input), got {shape}."
            )
        if target.dtype != torch.int64:
            raise ValueError(
                f"labels must be int64 class indices, got dtype {target.dtype}; use labels.long()."
            )
        if batch and (int(target.min()) < 0 or int(target.max()) >= self.num_classes):
            raise ValueError(
                f"labels must lie in [0, {self.num_classes}), got values in "
                f"[{int(target.min())}, {int(target.max())}]."
            )

    def _dummy_target(self) -> torch.Tensor:
        return torch.zeros(1, dtype=torch.int64)

    def sample_probs(
        self, x: torch.Tensor, num_samples: int = 64, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        r"""Class probabilities under ``num_samples`` weight samples, in one batched pass.

        :math:`p_s(x) = \mathrm{softmax}(W_s x + b_s)` for all samples through one ``einsum``.

        Args:
            x: Inputs ``[B, in_features]``.
            num_samples: Number of weight samples ``S`` (default 64, at least 1).
            generator: Optional torch generator for reproducible samples.

        Returns:
            Probabilities ``[S, B, C]``.
        """
        self._check_x(x)
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}.")
        w, b = self.posterior_samples(num_samples, generator)
        logits = torch.einsum("sci,bi->sbc", w, x) + b[:, None, :]
        return logits.softmax(-1)

    def predict_probs(
        self, x: torch.Tensor, num_samples: int = 64, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        r"""Posterior predictive class probabilities :math:`\frac1S\sum_s p_s(x)`.

        Args:
            x: Inputs ``[B, in_features]``.
            num_samples: Number of weight samples ``S`` (default 64, at least 1).
            generator: Optional torch generator for reproducible samples.

        Returns:
            Probabilities ``[B, C]`` (rows sum to one).
        """
        return self.sample_probs(x, num_samples, generator).mean(0)

    def predictive_uncertainty(
        self, x: torch.Tensor, num_samples: int = 64, generator: torch.Generator | None = None
    ) -> PredictiveUncertainty:
        """Predictive probabilities with total, aleatoric and epistemic (mutual information) parts.

        See :class:`PredictiveUncertainty`; with ``num_samples = 1`` the mutual information is 0.

        Args:
            x: Inputs ``[B, in_features]``.
            num_samples: Number of weight samples ``S`` (default 64, at least 1).
            generator: Optional torch generator for reproducible samples.
        """
        p = self.sample_probs(x, num_samples, generator)
        probs = p.mean(0)
        entropy = torch.special.entr(probs).sum(-1)
        expected_entropy = torch.special.entr(p).sum(-1).mean(0)
        mutual_information = (entropy - expected_entropy).clamp_min(0.0)
        return PredictiveUncertainty(probs, entropy, expected_entropy, mutual_information)


def train_bayesian_head(
    head: BayesianHead,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int = 500,
    lr: float = 0.05,
    batch_size: int | None = None,
    num_particles: int = 1,
    generator: torch.Generator | None = None,
) -> list[float]:
    """Fit a head's guide with Adam on the per-datum negative ELBO (:meth:`BayesianHead.loss`).

    Args:
        head: The head to train (a :class:`BayesianLinear` or :class:`BayesianClassifier`).
        x: Training inputs ``[N, in_features]``.
        y: Training targets: ``[N, out_features]`` floats for a :class:`BayesianLinear`,
            ``[N]`` int64 labels for a :class:`BayesianClassifier`.
        steps: Optimiser steps (default 500).
        lr: Adam learning rate (default 0.05).
        batch_size: Mini-batch size; ``None`` uses the full data set. The likelihood is scaled
            by ``N / batch_size``.
        num_particles: ELBO particles per step (see :meth:`BayesianHead.loss`).
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
