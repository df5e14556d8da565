"""Suite files and trial folders: the shipped suites are valid, a bad file says what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.runner import check_trials, env_dirname, trial_dir
from benchmarks.suites import (
    Suite,
    SuiteError,
    ThroughputSuite,
    Trial,
    list_suites,
    load_suite,
    parse_suite,
)


def test_shipped_suites_load_and_their_trials_are_valid():
    assert {"smoke", "throughput"} <= set(list_suites())
    smoke = load_suite("smoke")
    assert isinstance(smoke, Suite) and smoke.name == "smoke"
    assert {t.env_id for t in smoke.trials} >= {"umbra/CartPole-v0", "umbra/Pendulum-v0"}
    configs = check_trials(smoke.trials)  # every env id, agent and override exists
    assert [c.seed for c in configs] == [t.seed for t in smoke.trials]
    throughput = load_suite("throughput")
    assert isinstance(throughput, ThroughputSuite) and throughput.threshold == 475.0
    assert throughput.sb3["n_envs"] == 8 and throughput.sb3["learning_rate"] == "lin_1e-3"
    baselines = load_suite("baselines")
    assert {"ppo", "sb3-ppo", "sb3-recurrent-ppo"} == {t.agent for t in baselines.trials}
    check_trials(baselines.trials)


def test_a_suite_loads_by_path(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('seeds = 2\n[[envs]]\nid = "umbra/CartPole-v0"\nsteps = 100\n')
    suite = load_suite(path)
    assert suite.name == "mine"
    assert [t.seed for t in suite.trials] == [0, 1]


def test_grid_and_explicit_trials_with_overrides():
    suite = parse_suite(
        """
        agents = ["ppo"]
        seeds = [0, 1]
        steps = 1000
        config = { ent_coef = 0.01 }
        [[envs]]
        id = "umbra/CartPole-v0"
        num_envs = 16
        [[envs]]
        id = "umbra/Pendulum-v0"
        steps = 5000
        seeds = [7]
        config = { gamma = 0.9 }
        [[trials]]
        env = "CartPole-v1"
        agent = "mlp"
        seed = 3
        """,
        name="grid",
    )
    assert suite.trials == (
        Trial("umbra/CartPole-v0", "ppo", 0, 1000, 16, {}, {"ent_coef": 0.01}),
        Trial("umbra/CartPole-v0", "ppo", 1, 1000, 16, {}, {"ent_coef": 0.01}),
        Trial("umbra/Pendulum-v0", "ppo", 7, 5000, None, {}, {"ent_coef": 0.01, "gamma": 0.9}),
        Trial("CartPole-v1", "mlp", 3, 1000, None, {}, {"ent_coef": 0.01}),
    )


def test_reference_scores_and_more_seeds():
    suite = parse_suite(
        """
        agents = ["ppo", "mlp"]
        seeds = [3]
        [[envs]]
        id = "umbra/CartPole-v0"
        steps = 100
        reference = { random = 22, expert = 500 }
        [[envs]]
        id = "umbra/Pendulum-v0"
        """,
        name="refs",
    )
    assert suite.references == {"umbra/CartPole-v0": {"random": 22.0, "expert": 500.0}}
    more = suite.with_seeds(2)  # what --suite NAME --seeds 2 runs
    assert [t.key for t in more.trials] == [
        ("umbra/CartPole-v0", "ppo", 0), ("umbra/CartPole-v0", "ppo", 1),
        ("umbra/CartPole-v0", "mlp", 0), ("umbra/CartPole-v0", "mlp", 1),
        ("umbra/Pendulum-v0", "ppo", 0), ("umbra/Pendulum-v0", "ppo", 1),
        ("umbra/Pendulum-v0", "mlp", 0), ("umbra/Pendulum-v0", "mlp", 1),
    ]
    assert more.trials[1].steps == 100 and more.references == suite.references
    assert Suite.from_dict(json.loads(json.dumps(more.to_dict()))) == more


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('seed = 1\n[[envs]]\nid = "x"', "unknown key 'seed'; did you mean 'seeds'?"),
        ('[[envs]]\nid = "x"\nstep = 5', "envs[0]: unknown key 'step'; did you mean 'steps'?"),
        ('[[envs]]\nid = "x"\nsteps = "many"', "expected an integer"),
        ('[[envs]]\nid = "x"\nsteps = 0', "expected a positive integer"),
        ('seeds = [1, 1]\n[[envs]]\nid = "x"', "repeated seed"),
        ("agents = []", "non-empty list of agent names"),
        ('description = "nothing"', "the suite has no trials"),
        ('[[trials]]\nenv = "x"\nseed = 0', "missing key 'agent'"),
        ('[[envs]]\nid = "x"\n[[trials]]\nenv = "x"\nagent = "ppo"\nseed = 0', "appears twice"),
        ("kind = 'other'", "kind must be 'train' or 'throughput'"),
        ("kind = 'throughput'\n[umbra]\n[sb3]\nn_env = 4", "did you mean 'n_envs'?"),
        ("this is not toml", "invalid TOML"),
        ('[[envs]]\nid = "x"\nreference = { random = 1 }', "missing key 'expert'"),
        ('[[envs]]\nid = "x"\nreference = { random = 1, expert = 1 }', "must differ"),
        ('[[envs]]\nid = "x"\nreference = { random = 1, expert = "a" }', "must be a number"),
    ],
)
def test_invalid_suites_name_the_problem(text, message):
    with pytest.raises(SuiteError, match=None) as info:
        parse_suite(text, name="bad")
    assert message in str(info.value)


def test_unknown_suite_name_suggests_the_close_one():
    with pytest.raises(SuiteError, match="did you mean 'smoke'"):
        load_suite("smoek")


@pytest.mark.parametrize(
    ("trial", "message"),
    [
        (Trial("umbra/CartPole-v0", "lstmm", 0), "unknown agent 'lstmm'"),
        (Trial("umbra/CartPol-v0", "ppo", 0), "umbra/CartPole-v0"),
        (Trial("umbra/CartPole-v0", "ppo", 0, env_kwargs={"gravity": 1}), "'gravity'"),
        (Trial("umbra/CartPole-v0", "ppo", 0, config={"learning_rat": 1}), "learning_rate"),
    ],
)
def test_check_trials_rejects_bad_trials_before_training(trial, message):
    with pytest.raises(ValueError, match=None) as info:
        check_trials([trial])
    assert message in str(info.value) and "seed=0" in str(info.value)


@pytest.mark.parametrize(
    ("env_id", "folder"),
    [
        ("umbra/CartPole-v0", Path("umbra", "CartPole-v0")),
        ("CartPole-v1", Path("CartPole-v1")),
        ("envs.classic:CartPole", Path("envs.classic__CartPole")),
        ("../evil/../x", Path("__", "evil", "__", "x")),
        ("a b/c?d", Path("a_b", "c_d")),
    ],
)
def test_env_ids_become_safe_folders(env_id, folder):
    assert env_dirname(env_id) == folder
    path = trial_dir("runs", "smoke", Trial(env_id, "ppo", 3))
    assert path == Path("runs", "smoke") / folder / "ppo" / "seed3"


@pytest.mark.parametrize("name", [n for n in list_suites() if n != "throughput"])
def test_every_shipped_training_suite_passes_the_pre_flight_checks(name):
    """Every trial of every shipped suite builds its config and environment and its agent fits
    the environment: ``python -m benchmarks.run --suite NAME`` cannot fail before training."""
    suite = load_suite(name)
    assert isinstance(suite, Suite) and suite.trials
    configs = check_trials(suite.trials)
    assert len(configs) == len(suite.trials)
