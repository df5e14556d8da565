"""Calibration metrics, reliability diagrams and temperature scaling.

All functions take numpy arrays or torch tensors and return plain Python floats (or write a file).
Probabilities are either ``[N, C]`` rows that sum to one, or ``[N]`` binary positive-class
probabilities (turned into ``[N, 2]`` as ``[1 - p, p]``). Labels are integers in ``[0, C)``.

References:
    Guo et al., "On Calibration of Modern Neural Networks", ICML 2017 (ECE, MCE, temperature
    scaling). Naeini et al., "Obtaining Well Calibrated Probabilities Using Bayesian Binning", AAAI
    2015 (ECE/MCE). Brier, "Verification of forecasts expressed in terms of probability", 1950.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

__all__ = [
    "brier_score",
    "expected_calibration_error",
    "fit_temperature",
    "maximum_calibration_error",
    "negative_log_likelihood",
    "reliability_diagram",
]

_ROW_SUM_ATOL = 1e-4
_STRATEGIES = ("uniform", "quantile")


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _check_inputs(probs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate and normalise ``probs`` to ``[N, C]`` float64 and ``labels`` to ``[N]`` int64."""
    p = _to_numpy(probs).astype(np.float64)
    y = _to_numpy(labels)
    if p.ndim == 1:
        p = np.stack([1.0 - p, p], axis=1) if p.size else p.reshape(0, 2)
        binary = True
    elif p.ndim == 2:
        binary = False
    else:
        raise ValueError(
            f"probs must have shape [N, C] or [N] (binary), got shape {p.shape}; "
            "flatten any extra batch dimensions first."
        )
    if p.shape[0] == 0:
        raise ValueError("probs is empty; pass at least one sample.")
    if y.ndim != 1 or y.shape[0] != p.shape[0]:
        raise ValueError(
            f"labels must have shape [N] = [{p.shape[0]}] to match probs, got shape {y.shape}."
        )
    if not np.all(np.isfinite(p)) or p.min() < 0.0 or p.max() > 1.0:
        what = "binary probabilities" if binary else "probabilities"
        raise ValueError(
            f"probs must be {what} in [0, 1]; got values in [{np.nanmin(p):.4g}, "
            f"{np.nanmax(p):.4g}]. Pass softmax(logits), not logits."
        )
    row_sums = p.sum(axis=1)
    if not np.allclose(row_sums, 1.0, atol=_ROW_SUM_ATOL):
        worst = row_sums[np.argmax(np.abs(row_sums - 1.0))]
        raise ValueError(
            f"each row of probs must sum to 1 (tolerance {_ROW_SUM_ATOL}); found a row summing "
            f"to {worst:.6g}. Normalise with softmax over the class dimension."
        )
    if not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0):
            y = y.astype(np.int64)
        else:
            raise ValueError(f"labels must be integer class indices, got dtype {y.dtype}.")
    n_classes = p.shape[1]
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(
            f"labels must lie in [0, {n_classes}) for {n_classes} classes; got labels in "
            f"[{y.min()}, {y.max()}]."
        )
    return p, y.astype(np.int64)


def _check_n_bins(n_bins: int) -> None:
    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}.")


def _bin_stats(
    probs: Any, labels: Any, n_bins: int, strategy: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bin sample counts, accuracies and mean top-label confidences.

    Returns:
        ``(counts, acc, conf)``, each of shape ``[n_bins]``; ``acc`` and ``conf`` are 0 for empty
        bins.
    """
    _check_n_bins(n_bins)
    if strategy not in _STRATEGIES:
        raise ValueError(f"strategy must be one of {_STRATEGIES}, got {strategy!r}.")
    p, y = _check_inputs(probs, labels)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    n = conf.shape[0]
    if strategy == "uniform":
        # Bins (0, 1/B], (1/B, 2/B], ..., with confidence 0 falling into the first bin.
        idx = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    else:
        # Equal-mass bins: sort by confidence and split into n_bins nearly equal chunks.
        order = np.argsort(conf, kind="stable")
        idx = np.empty(n, dtype=np.int64)
        idx[order] = (np.arange(n) * n_bins) // n
    counts = np.bincount(idx, minlength=n_bins).astype(np.float64)
    safe = np.maximum(counts, 1.0)
    acc = np.bincount(idx, weights=correct, minlength=n_bins) / safe
    mean_conf = np.bincount(idx, weights=conf, minlength=n_bins) / safe
    return counts, acc, mean_conf


def expected_calibration_error(
    probs: Any, labels: Any, n_bins: int = 15, strategy: str = "uniform"
) -> float:
    r"""Expected calibration error of the top-label confidence.

    .. math::
        \mathrm{ECE} = \sum_{b=1}^{B} \frac{|B_b|}{N}\,\bigl|\mathrm{acc}(B_b) -
        \mathrm{conf}(B_b)\bigr|

    where the confidence of a sample is :math:`\max_c p_c`, :math:`\mathrm{acc}(B_b)` is the
    fraction of bin :math:`b` whose arg-max equals the label and :math:`\mathrm{conf}(B_b)` its mean
    confidence (Guo et al., 2017).

    Args:
        probs: Predicted probabilities, ``[N, C]`` rows summing to 1 or ``[N]`` binary
            positive-class probabilities.
        labels: Integer labels ``[N]`` in ``[0, C)``.
        n_bins: Number of bins ``B`` (default 15), at least 1.
        strategy: ``"uniform"`` (equal-width bins ``((b-1)/B, b/B]`` over the confidence) or
            ``"quantile"`` (equal-count bins over the sorted confidences).

    Returns:
        The ECE in ``[0, 1]``.

    Raises:
        ValueError: On non-probabilities, rows not summing to 1, mismatched shapes, labels out of
            range, ``n_bins < 1`` or an unknown strategy.
    """
    counts, acc, conf = _bin_stats(probs, labels, n_bins, strategy)
    return float(np.sum(counts / counts.sum() * np.abs(acc - conf)))


def maximum_calibration_error(
    probs: Any, labels: Any, n_bins: int = 15, strategy: str = "uniform"
) -> float:
    r"""Maximum calibration error over non-empty bins.

    .. math::
        \mathrm{MCE} = \max_{b:\,|B_b| > 0} \bigl|\mathrm{acc}(B_b) - \mathrm{conf}(B_b)\bigr|

    Args:
        probs: ``[N, C]`` or ``[N]`` probabilities, as in :func:`expected_calibration_error`.
        labels: Integer labels ``[N]``.
        n_bins: Number of bins (default 15), at least 1.
        strategy: ``"uniform"`` or ``"quantile"``.

    Returns:
        The MCE in ``[0, 1]``.
    """
    counts, acc, conf = _bin_stats(probs, labels, n_bins, strategy)
    return float(np.max(np.abs(acc - conf)[counts > 0]))


def negative_log_likelihood(probs: Any, labels: Any, eps: float = 1e-12) -> float:
    r"""Mean negative log-likelihood of the labels.

    .. math::
        \mathrm{NLL} = -\frac{1}{N}\sum_{i=1}^{N} \log \max(p_{i, y_i}, \epsilon)

    Args:
        probs: ``[N, C]`` or ``[N]`` probabilities.
        labels: Integer labels ``[N]``.
        eps: Floor on the probability so a confident mistake gives a large finite value.

    Returns:
        The mean NLL in nats.
    """
    p, y = _check_inputs(probs, labels)
    picked = p[np.arange(p.shape[0]), y]
    return float(-np.mean(np.log(np.maximum(picked, eps))))


def brier_score(probs: Any, labels: Any) -> float:
    r"""Multi-class Brier score.

    .. math::
        \mathrm{BS} = \frac{1}{N}\sum_{i=1}^{N}\sum_{c=1}^{C} (p_{i,c} - y_{i,c})^2

    with :math:`y_{i,c}` the one-hot label. For ``[N]`` binary input the two-column form is used,
    which is twice the classic binary Brier score :math:`\frac1N\sum_i (p_i - y_i)^2`.

    Args:
        probs: ``[N, C]`` or ``[N]`` probabilities.
        labels: Integer labels ``[N]``.

    Returns:
        The Brier score in ``[0, 2]``.
    """
    p, y = _check_inputs(probs, labels)
    onehot = np.zeros_like(p)
    onehot[np.arange(p.shape[0]), y] = 1.0
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def reliability_diagram(
    probs: Any,
    labels: Any,
    path: str | Path,
    n_bins: int = 15,
    strategy: str = "uniform",
    title: str | None = None,
) -> Path:
    """Write a reliability diagram (accuracy against confidence per bin) as a PNG.

    Bars show each non-empty bin's accuracy at its mean confidence; the diagonal is perfect
    calibration. The title carries the ECE.

    Args:
        probs: ``[N, C]`` or ``[N]`` probabilities.
        labels: Integer labels ``[N]``.
        path: Output file; parent folders are created.
        n_bins: Number of bins (default 15).
        strategy: ``"uniform"`` or ``"quantile"``.
        title: Optional title prefix.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts, acc, conf = _bin_stats(probs, labels, n_bins, strategy)
    ece = float(np.sum(counts / counts.sum() * np.abs(acc - conf)))
    keep = counts > 0
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4, 4))
    try:
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
        ax.bar(
            conf[keep], acc[keep], width=1.0 / n_bins, edgecolor="k", alpha=0.7, label="accuracy"
        )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence")
        ax.set_ylabel("accuracy")
        prefix = f"{title} — " if title else ""
        ax.set_title(f"{prefix}ECE = {ece:.3f}")
        ax.legend(loc="upper left")
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=100)
    finally:
        plt.close(fig)
    return path


def fit_temperature(logits: Any, labels: Any, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    r"""Fit a temperature for temperature scaling on a validation split (Guo et al., 2017).

    .. math::
        T^\star = \arg\min_{T > 0} -\frac{1}{N}\sum_{i=1}^{N}
        \log \operatorname{softmax}(z_i / T)_{y_i}

    minimised over :math:`\log T` with bounded Brent search. Dividing logits by :math:`T` never
    changes the arg-max, so accuracy is unchanged.

    Args:
        logits: Validation logits ``[N, C]`` (not probabilities).
        labels: Integer labels ``[N]`` in ``[0, C)``.
        bounds: Search interval for ``T`` (default ``(0.05, 20)``).

    Returns:
        The fitted temperature ``T > 0``; calibrated probabilities are ``softmax(logits / T)``.
    """
    z = _to_numpy(logits).astype(np.float64)
    y = _to_numpy(labels)
    if z.ndim != 2 or z.shape[1] < 2:
        raise ValueError(f"logits must have shape [N, C] with C >= 2, got shape {z.shape}.")
    if z.shape[0] == 0:
        raise ValueError("logits is empty; pass at least one validation sample.")
    if not np.all(np.isfinite(z)):
        raise ValueError("logits contain NaN or inf.")
    if y.ndim != 1 or y.shape[0] != z.shape[0]:
        raise ValueError(
            f"labels must have shape [N] = [{z.shape[0]}] to match logits, got {y.shape}."
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integer class indices, got dtype {y.dtype}.")
    if y.min() < 0 or y.max() >= z.shape[1]:
        raise ValueError(
            f"labels must lie in [0, {z.shape[1]}); got labels in [{y.min()}, {y.max()}]."
        )
    lo, hi = bounds
    if not 0 < lo < hi:
        raise ValueError(f"bounds must satisfy 0 < low < high, got {bounds}.")
    rows = np.arange(z.shape[0])

    def nll(log_t: float) -> float:
        return float(-np.mean(log_softmax(z / np.exp(log_t), axis=1)[rows, y]))

    res = minimize_scalar(
        nll, bounds=(np.log(lo), np.log(hi)), method="bounded", options={"xatol": 1e-6}
    )
    temperature = float(np.exp(res.x))
    if min(abs(res.x - np.log(lo)), abs(res.x - np.log(hi))) < 1e-3:
        warnings.warn(
            f"the fitted temperature {temperature:.3g} sits at the search bound {bounds}: the "
            "validation NLL keeps falling beyond it (e.g. every validation sample is classified "
            "correctly, so nothing speaks against sharper probabilities). Use a larger or harder "
            "validation split, or widen `bounds`.",
            stacklevel=2,
        )
    return temperature
