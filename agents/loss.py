"""PPO's loss as a pure function of one minibatch's evaluation, and the KL stopping rule.

Read beside Schulman et al., "Proximal Policy Optimization Algorithms" (2017), eq. 7 and 9, and
Huang et al., "The 37 Implementation Details of PPO" (2022) for advantage normalisation, value
clipping and the approximate KL. :func:`ppo_loss` reads nothing but its arguments, so it is
tested alone against closed forms (``tests/agents/test_loss.py``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from agents.policies import Evaluation


class LossTerms(NamedTuple):
    """The total loss to minimise and its parts (scalars; the statistics carry no gradient).

    Attributes:
        loss: ``policy_loss + vf_coef * value_loss - ent_coef * entropy``.
        policy_loss: The clipped surrogate (with a Bayesian policy head's penalty).
        value_loss: Half the (clipped) squared error (with a Bayesian value head's penalty).
        entropy: Mean entropy of the policy.
        approx_kl: Schulman's k3 estimator of ``KL(old || new)``: mean of
            ``(ratio - 1) - log(ratio)``.
        clipfrac: Fraction of samples whose ratio left ``[1 - clip, 1 + clip]``.
    """

    loss: torch.Tensor
    policy_loss: torch.Tensor
    value_loss: torch.Tensor
    entropy: torch.Tensor
    approx_kl: torch.Tensor
    clipfrac: torch.Tensor


def ppo_loss(
    new: Evaluation,
    old_logprob: torch.Tensor,
    old_value: torch.Tensor,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    *,
    clip: float,
    vf_coef: float,
    ent_coef: float,
    norm_adv: bool = True,
    clip_vloss: bool = True,
    acting: torch.Tensor | None = None,
    balance_groups: bool = False,
) -> LossTerms:
    r"""PPO's loss for one minibatch.

    With :math:`r = \exp(\log\pi_{new} - \log\pi_{old})` and advantages :math:`A` (normalised to
    zero mean and unit std over the minibatch when ``norm_adv``):

    .. math::
        L_\pi = \mathrm{mean}\,\max(-A r,\; -A\,\mathrm{clip}(r, 1-\epsilon, 1+\epsilon))
        \qquad
        L_V = \tfrac12\,\mathrm{mean}\,\max\big((V - R)^2,
              (V_{old} + \mathrm{clip}(V - V_{old}, -\epsilon, \epsilon) - R)^2\big)

    (without ``clip_vloss``: :math:`L_V = \frac12\,\mathrm{mean}(V - R)^2`); the Bayesian heads'
    penalties of ``new`` are added to :math:`L_\pi` and :math:`L_V`, and the loss is
    :math:`L_\pi + c_V L_V - c_H\,\mathrm{mean}\,H`.

    Args:
        new: The policy's evaluation of the minibatch (log-probabilities, entropies, values
            ``[...]`` and penalties).
        old_logprob, old_value: What the rollout recorded, ``[...]``.
        advantages, returns: From GAE, ``[...]``.
        clip: :math:`\epsilon`, for both the ratio and the value.
        vf_coef, ent_coef: :math:`c_V`, :math:`c_H`.
        norm_adv: Normalise the advantages over the minibatch.
        clip_vloss: Clip the value update around ``old_value``.
        acting: ``[...]`` bool, the samples whose action counts (multi-agent turns): the policy
            terms (surrogate, entropy, KL, clip fraction, advantage normalisation) are means over
            them alone; the value loss keeps every sample. None: every sample acts.

        balance_groups: With ``new.groups``: every group weighs the same in each term (each
            mean is the mean over the groups present of the group's own mean), instead of every
            sample; for one policy shared by a mixed team, whose largest group would otherwise
            drown the others.

    Where ``new.groups`` says which group each sample belongs to (a mixed team), advantages are
    normalised within each group.
    """
    log_ratio = new.logprob - old_logprob
    ratio = log_ratio.exp()
    mean = torch.mean if acting is None else _masked_mean(acting)
    value_mean = torch.mean
    if balance_groups and new.groups is not None:
        mean = _group_balanced_mean(new.groups, acting)
        value_mean = _group_balanced_mean(new.groups, None)
    adv = advantages
    if norm_adv and new.groups is not None:
        adv = _normalised_per_group(adv, new.groups, acting)
    elif norm_adv and acting is None:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    elif norm_adv:  # torch.std's unbiased estimate, over the acting samples
        count = acting.float().sum()
        centred = adv - mean(adv)
        variance = mean(centred.square()) * count / (count - 1).clamp(min=1.0)
        adv = centred / (variance.sqrt() + 1e-8)
    policy_loss = mean(torch.max(-adv * ratio, -adv * ratio.clamp(1 - clip, 1 + clip)))
    if clip_vloss:
        clipped = old_value + (new.value - old_value).clamp(-clip, clip)
        value_loss = 0.5 * value_mean(torch.max((new.value - returns).square(),
                                                (clipped - returns).square()))
    else:
        value_loss = 0.5 * value_mean((new.value - returns).square())
    policy_loss = policy_loss + new.policy_penalty
    value_loss = value_loss + new.value_penalty
    entropy = mean(new.entropy)
    loss = policy_loss + vf_coef * value_loss - ent_coef * entropy
    with torch.no_grad():
        approx_kl = mean((ratio - 1) - log_ratio)
        clipfrac = mean(((ratio - 1.0).abs() > clip).float())
    return LossTerms(loss, policy_loss, value_loss, entropy, approx_kl, clipfrac)


def _normalised_per_group(adv: torch.Tensor, groups: torch.Tensor,
                          acting: torch.Tensor | None) -> torch.Tensor:
    """``adv`` less its group's mean, over its group's (unbiased) std; statistics over the
    acting samples."""
    member, count = _group_members(groups, acting, adv.dtype)
    dims = tuple(range(adv.dim()))
    group_mean = (adv.unsqueeze(-1) * member).sum(dims) / count.clamp(min=1.0)
    centred = adv - group_mean[groups]
    variance = (centred.square().unsqueeze(-1) * member).sum(dims) / (count - 1).clamp(min=1.0)
    return centred / (variance.sqrt()[groups] + 1e-8)


def _group_members(groups: torch.Tensor, acting: torch.Tensor | None,
                   dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``[..., G]`` one-hot membership of each sample in its group (zero where it does not act)
    and ``[G]`` the acting members of each group."""
    member = torch.nn.functional.one_hot(groups, int(groups.max()) + 1).to(dtype)
    if acting is not None:
        member = member * acting.to(dtype).unsqueeze(-1)
    return member, member.sum(tuple(range(groups.dim())))


def _group_balanced_mean(groups: torch.Tensor, acting: torch.Tensor | None):
    """``mean`` that weighs each group present (among the samples where ``acting`` holds, all
    if None) equally: the mean over those groups of each group's mean."""
    member, count = _group_members(groups, acting, torch.float32)
    present = (count > 0).float().sum().clamp(min=1.0)
    weight = (member / (count.clamp(min=1.0) * present)).sum(-1)

    def mean(values: torch.Tensor) -> torch.Tensor:
        return (values * weight).sum()

    return mean


def _masked_mean(acting: torch.Tensor):
    """``mean`` over the samples where ``acting`` holds (0 when none does)."""
    weight = acting.float()
    count = weight.sum().clamp(min=1.0)

    def mean(values: torch.Tensor) -> torch.Tensor:
        return (values * weight).sum() / count

    return mean


def kl_exceeded(epoch_kl: float, target_kl: float | None) -> bool:
    """Whether an update stops its epochs early: the largest approximate KL of the epoch's
    minibatches went above ``target_kl`` (never when it is None)."""
    return target_kl is not None and epoch_kl > target_kl
