"""Bayesian classification head: uncertainty on and off the data, the loss's scaling, bad input."""

import pyro
import pytest
import torch

from bayes import BayesianClassifier, train_bayesian_head


@pytest.fixture(autouse=True)
def _clean_pyro():
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    torch.set_num_threads(1)
    yield
    pyro.clear_param_store()


def _blobs(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two Gaussian blobs (std 0.7) at (-2, 0) and (2, 0); the label is the blob."""
    labels = torch.arange(n) % 2
    centers = torch.tensor([[-2.0, 0.0], [2.0, 0.0]])
    return centers[labels] + 0.7 * torch.randn(n, 2), labels


def _spread_guide(head: BayesianClassifier) -> None:
    """Move the guide away from its initial values, so checks do not rely on symmetry."""
    gen = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for name, p in head.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            p.copy_(0.5 * noise - (1.0 if ".scales." in name else 0.0))


def test_epistemic_uncertainty_is_high_off_the_data_and_low_on_it():
    head = BayesianClassifier(2, 2)
    x, labels = _blobs(200)
    train_bayesian_head(head, x, labels, steps=150, lr=0.1, num_particles=8)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        probs = head.predict_probs(x, num_samples=256, generator=gen)
        on_data = head.predictive_uncertainty(x, num_samples=512, generator=gen)
        # Far along the decision boundary: no data constrains the logits there.
        far = head.predictive_uncertainty(
            torch.tensor([[0.0, 8.0], [0.0, -8.0]]), num_samples=512, generator=gen
        )
        # Between the blobs: the label is a coin flip (aleatoric), the weights know it.
        middle = head.predictive_uncertainty(torch.zeros(1, 2), num_samples=512, generator=gen)
    assert (probs.argmax(-1) == labels).float().mean() > 0.97
    # Every far input is more uncertain about the weights than every training input.
    assert far.mutual_information.min() > on_data.mutual_information.max()
    assert far.mutual_information.min() > 5 * on_data.mutual_information.mean()
    assert far.entropy.min() > 5 * on_data.entropy.mean()
    # The decomposition separates the two: high total entropy in the middle, mostly aleatoric.
    assert middle.entropy.item() > 0.6  # close to log 2
    assert middle.mutual_information.item() < 0.5 * far.mutual_information.min()
    torch.testing.assert_close(
        middle.entropy, middle.expected_entropy + middle.mutual_information, rtol=0, atol=1e-6
    )


def test_probabilities_are_one_batched_pass_over_weight_samples():
    head = BayesianClassifier(3, 4)
    _spread_guide(head)
    x = torch.randn(5, 3)
    p = head.sample_probs(x, num_samples=7, generator=torch.Generator().manual_seed(2))
    assert p.shape == (7, 5, 4)
    torch.testing.assert_close(p.sum(-1), torch.ones(7, 5))
    # The same numbers as a loop over the same weight samples.
    w, b = head.posterior_samples(7, generator=torch.Generator().manual_seed(2))
    looped = torch.stack([torch.softmax(x @ w[s].T + b[s], -1) for s in range(7)])
    torch.testing.assert_close(p, looped)
    mean = head.predict_probs(x, num_samples=7, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(mean, looped.mean(0))
    u = head.predictive_uncertainty(x, num_samples=7, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(u.probs, mean)
    assert u.entropy.shape == u.expected_entropy.shape == u.mutual_information.shape == (5,)
    assert torch.all(u.mutual_information >= 0) and torch.all(
        u.entropy <= torch.log(torch.tensor(4.0))
    )
    # One sample has no spread between samples: no epistemic part.
    single = head.predictive_uncertainty(x, num_samples=1)
    torch.testing.assert_close(single.mutual_information, torch.zeros(5))


def test_loss_is_mean_nll_plus_kl_over_num_data():
    """The N / B likelihood scaling and the KL weight 1 / num_data, against a direct estimate."""
    head = BayesianClassifier(3, 4)
    _spread_guide(head)
    x, labels, num_data, num_samples = (
        torch.randn(8, 3),
        torch.tensor([0, 1, 2, 3, 3, 2, 1, 0]),
        100,
        20_000,
    )
    with torch.no_grad():
        loss = head.loss(x, labels, num_data=num_data, num_particles=num_samples)
        w, b = head.posterior_samples(num_samples, generator=torch.Generator().manual_seed(4))
        log_p = torch.log_softmax(torch.einsum("sci,bi->sbc", w, x) + b[:, None], -1)
        nll = -log_p.gather(-1, labels.expand(num_samples, 8)[..., None]).mean()
        expected = nll + head.kl_divergence() / num_data
    # Both sides are Monte Carlo (standard errors ~0.0015); a KL weight of 1 / B instead of
    # 1 / num_data would be off by ~1.9.
    assert abs(loss.item() - expected.item()) < 0.01


def test_two_classifiers_train_independently():
    a, b = BayesianClassifier(2, 2), BayesianClassifier(2, 2)
    before_b = {k: v.clone() for k, v in b.state_dict().items()}
    before_a = {k: v.clone() for k, v in a.state_dict().items()}
    train_bayesian_head(a, *_blobs(50), steps=20, lr=0.1)
    for k, v in b.state_dict().items():
        torch.testing.assert_close(v, before_b[k], rtol=0.0, atol=0.0)
    assert all(not torch.equal(v, before_a[k]) for k, v in a.state_dict().items())


def test_minibatch_training():
    head = BayesianClassifier(2, 2)
    assert head.num_classes == 2
    x, labels = _blobs(200)
    losses = train_bayesian_head(head, x, labels, steps=60, lr=0.1, batch_size=32)
    assert losses[-1] < losses[0]
    with torch.no_grad():
        accuracy = (head.predict_probs(x).argmax(-1) == labels).float().mean()
    assert accuracy > 0.95


def test_bad_inputs_raise():
    head = BayesianClassifier(2, 3)
    x = torch.randn(4, 2)
    with pytest.raises(ValueError, match=r"lie in \[0, 3\), got values in \[0, 3\]"):
        head.loss(x, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"lie in \[0, 3\), got values in \[-1, 2\]"):
        head.loss(x, torch.tensor([0, -1, 2, 1]))
    with pytest.raises(ValueError, match="int64 class indices.*labels.long"):
        head.loss(x, torch.tensor([0.0, 1.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match="int64"):
        head.loss(x, torch.tensor([0, 1, 2, 1], dtype=torch.int32))
    with pytest.raises(ValueError, match=r"labels must have shape \[4\]"):
        head.loss(x, torch.zeros(4, 1, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"shape \[B, 2\]"):
        head.loss(torch.randn(4, 3), torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="num_data"):
        head.loss(x, torch.zeros(4, dtype=torch.int64), num_data=3)
    with pytest.raises(ValueError, match="num_samples"):
        head.predict_probs(x, num_samples=0)
    with pytest.raises(ValueError, match="num_samples"):
        head.predictive_uncertainty(x, num_samples=0)
    with pytest.raises(ValueError, match=r"shape \[B, 2\]"):
        head.sample_probs(torch.randn(2))
    with pytest.raises(ValueError, match="num_classes"):
        BayesianClassifier(2, 1)
    with pytest.raises(ValueError, match="prior_scale"):
        BayesianClassifier(2, 3, prior_scale=0.0)
