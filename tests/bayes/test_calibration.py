"""Calibration metrics against hand-computed values, temperature scaling, bad inputs."""

import math

import numpy as np
import pytest
import torch
from scipy.special import softmax

from bayes.calibration import (
    _bin_stats,
    brier_score,
    expected_calibration_error,
    fit_temperature,
    maximum_calibration_error,
    negative_log_likelihood,
    reliability_diagram,
)

# Five samples, three classes. Top-label confidence, prediction, correct?
#   a [0.2, 0.3,  0.5 ] y=2 -> conf 0.5, pred 2, correct
#   b [0.4, 0.35, 0.25] y=1 -> conf 0.4, pred 0, wrong
#   c [0.9, 0.05, 0.05] y=0 -> conf 0.9, pred 0, correct
#   d [0.1, 0.7,  0.2 ] y=0 -> conf 0.7, pred 1, wrong
#   e [0.2, 0.2,  0.6 ] y=2 -> conf 0.6, pred 2, correct
PROBS = np.array(
    [
        [0.2, 0.3, 0.5],
        [0.4, 0.35, 0.25],
        [0.9, 0.05, 0.05],
        [0.1, 0.7, 0.2],
        [0.2, 0.2, 0.6],
    ]
)
LABELS = np.array([2, 1, 0, 0, 2])


def test_ece_two_bins_by_hand():
    # Bins (0, 0.5] and (0.5, 1].
    # Bin 1 = {a, b}: acc 1/2, conf (0.5 + 0.4)/2 = 0.45, gap 0.05.
    # Bin 2 = {c, d, e}: acc 2/3, conf (0.9 + 0.7 + 0.6)/3 = 2.2/3, gap 0.2/3.
    # ECE = 2/5 * 0.05 + 3/5 * 0.2/3 = 0.02 + 0.04 = 0.06; MCE = 0.2/3.
    assert expected_calibration_error(PROBS, LABELS, n_bins=2) == pytest.approx(0.06)
    assert maximum_calibration_error(PROBS, LABELS, n_bins=2) == pytest.approx(0.2 / 3)


def test_ece_three_bins_by_hand():
    # Bins (0, 1/3], (1/3, 2/3], (2/3, 1].
    # Bin 2 = {a, b, e}: acc 2/3, conf (0.5 + 0.4 + 0.6)/3 = 0.5, gap 1/6.
    # Bin 3 = {c, d}: acc 1/2, conf (0.9 + 0.7)/2 = 0.8, gap 0.3.
    # ECE = 3/5 * 1/6 + 2/5 * 0.3 = 0.1 + 0.12 = 0.22; MCE = 0.3 (empty bin 1 ignored).
    assert expected_calibration_error(PROBS, LABELS, n_bins=3) == pytest.approx(0.22)
    assert maximum_calibration_error(PROBS, LABELS, n_bins=3) == pytest.approx(0.3)


def test_torch_input_matches_numpy():
    got = expected_calibration_error(torch.tensor(PROBS), torch.tensor(LABELS), n_bins=3)
    assert got == pytest.approx(0.22)


def test_binary_vector_input():
    # p = [0.8, 0.3], y = [1, 0]: confidences 0.8 and 0.7, both correct.
    # One bin: acc 1, conf 0.75 -> ECE 0.25.
    assert expected_calibration_error(np.array([0.8, 0.3]), [1, 0], n_bins=1) == pytest.approx(0.25)


def test_nll_and_brier_by_hand():
    # NLL = -mean(log p_y) over p_y = 0.5, 0.35, 0.9, 0.1, 0.6.
    expected_nll = -np.mean(np.log([0.5, 0.35, 0.9, 0.1, 0.6]))
    assert negative_log_likelihood(PROBS, LABELS) == pytest.approx(expected_nll)
    # Brier per sample: a 0.04+0.09+0.25=0.38, b 0.16+0.4225+0.0625=0.645,
    # c 0.01+0.0025+0.0025=0.015, d 0.81+0.49+0.04=1.34, e 0.04+0.04+0.16=0.24 -> 2.62/5.
    assert brier_score(PROBS, LABELS) == pytest.approx(0.524)


def test_perfect_predictions_score_zero():
    probs = np.eye(3)[[0, 1, 2, 1]]
    labels = np.array([0, 1, 2, 1])
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0)
    assert brier_score(probs, labels) == pytest.approx(0.0)
    assert negative_log_likelihood(probs, labels) == pytest.approx(0.0)


@pytest.mark.parametrize("n, n_bins", [(10, 5), (12, 4), (9, 3)])
def test_quantile_bins_have_equal_counts(n, n_bins):
    rng = np.random.default_rng(0)
    probs = softmax(rng.normal(size=(n, 4)), axis=1)
    labels = rng.integers(0, 4, size=n)
    counts, _, _ = _bin_stats(probs, labels, n_bins, "quantile")
    assert np.all(counts == n // n_bins)
    ece = expected_calibration_error(probs, labels, n_bins=n_bins, strategy="quantile")
    # Guo et al.'s formula over the sorted confidences cut into n_bins equal chunks.
    order = np.argsort(probs.max(1))
    chunks = zip(np.split(probs.max(1)[order], n_bins),
                 np.split((probs.argmax(1) == labels)[order], n_bins), strict=True)
    assert ece == pytest.approx(np.mean([abs(c.mean() - k.mean()) for c, k in chunks]))


def _overconfident_data(n, rng):
    # A well-calibrated generator: labels are drawn from softmax(z). Scaling z by 5 makes the
    # classifier overconfident without changing its arg-max.
    z = rng.normal(scale=1.0, size=(n, 3))
    labels = np.array([rng.choice(3, p=p) for p in softmax(z, axis=1)])
    return 5.0 * z, labels


def test_temperature_scaling_lowers_nll_and_keeps_accuracy():
    rng = np.random.default_rng(0)
    val_logits, val_labels = _overconfident_data(1000, rng)
    test_logits, test_labels = _overconfident_data(1000, rng)
    t = fit_temperature(val_logits, val_labels)
    assert t > 1.0 and math.isfinite(t)
    assert 3.5 < t < 7.0  # the true temperature is 5
    before = softmax(test_logits, axis=1)
    after = softmax(test_logits / t, axis=1)
    assert negative_log_likelihood(after, test_labels) < negative_log_likelihood(
        before, test_labels
    )
    assert expected_calibration_error(after, test_labels) < expected_calibration_error(
        before, test_labels
    )
    np.testing.assert_array_equal(before.argmax(1), after.argmax(1))


def test_fit_temperature_accepts_torch():
    logits = torch.randn(50, 3)
    labels = torch.randint(0, 3, (50,))
    assert fit_temperature(logits, labels) > 0


def test_reliability_diagram_writes_png(tmp_path):
    path = reliability_diagram(PROBS, LABELS, tmp_path / "sub" / "rel.png", n_bins=3)
    assert path.exists()
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "probs, labels, kwargs, match",
    [
        (PROBS * 2, LABELS, {}, r"\[0, 1\]"),
        (-PROBS, LABELS, {}, r"\[0, 1\]"),
        (np.full((2, 3), 0.5), [0, 1], {}, "sum to 1"),
        (PROBS, LABELS, {"n_bins": 0}, "n_bins"),
        (PROBS, np.array([2, 1, 0, 0, 3]), {}, "labels must lie"),
        (PROBS, np.array([2, 1, 0, 0, -1]), {}, "labels must lie"),
        (PROBS, LABELS[:4], {}, "shape"),
        (PROBS, LABELS, {"strategy": "kmeans"}, "strategy"),
        (np.array([0.3, 1.2]), [0, 1], {}, r"\[0, 1\]"),
    ],
)
def test_ece_bad_inputs_raise(probs, labels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        expected_calibration_error(probs, labels, **kwargs)


@pytest.mark.parametrize("fn", [maximum_calibration_error, negative_log_likelihood, brier_score])
def test_other_metrics_reject_non_probabilities(fn):
    with pytest.raises(ValueError, match="sum to 1"):
        fn(np.full((2, 3), 0.5), [0, 1])


def test_reliability_diagram_rejects_bad_bins(tmp_path):
    with pytest.raises(ValueError, match="n_bins"):
        reliability_diagram(PROBS, LABELS, tmp_path / "x.png", n_bins=0)
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    "logits, labels, match",
    [
        (np.zeros(5), np.zeros(5, dtype=int), "shape"),
        (np.zeros((5, 3)), np.array([0, 1, 2, 3, 0]), "labels must lie"),
        (np.zeros((5, 3)), np.zeros(4, dtype=int), "labels must have shape"),
    ],
)
def test_fit_temperature_bad_inputs(logits, labels, match):
    with pytest.raises(ValueError, match=match):
        fit_temperature(logits, labels)
