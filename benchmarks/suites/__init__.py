"""Benchmark suites: the TOML files in this folder and the loader that validates them.

A suite is a declarative file, found by name among the files shipped here
(``load_suite("smoke")`` reads ``benchmarks/suites/smoke.toml``) or by path. Two kinds exist.

A **train** suite (the default kind) lists trials, each one PPO training of one agent on one
environment with one seed. Write them as a grid, as explicit trials, or both::

    description = "What the suite is for, one line."
    agents = ["ppo"]            # grid: every env x agent x seed
    seeds = 2                   # an int K means seeds 0..K-1; or a list [0, 1, 7]
    steps = 50_000              # default budget per trial (omit: the agent preset's total_steps)
    num_envs = 8                # optional default (omit: the agent preset's)
    config = { ent_coef = 0.0 } # optional PPOConfig overrides for every trial

    [[envs]]                    # one table per environment of the grid
    id = "umbra/CartPole-v0"
    steps = 40_000              # per-env overrides: steps, num_envs, env_kwargs, config,
                                # agents, seeds
    reference = { random = 22.0, expert = 500.0 }  # optional: returns of a random policy and
                                # an expert; reports aggregate normalised scores over envs
                                # when every env has them

    [[trials]]                  # explicit trials, added after the grid
    env = "CartPole-v1"
    agent = "ppo"
    seed = 3
    steps = 20_000              # optional: num_envs, env_kwargs, config

A **throughput** suite (``kind = "throughput"``) holds the settings of the speed comparison against
stable-baselines3 run by :mod:`benchmarks.throughput`; see ``throughput.toml`` for its keys.

Agents are the names of :data:`agents.presets.AGENTS` (Umbra's PPO with a preset), the
stable-baselines3 baselines of :data:`agents.sb3.SB3_AGENTS` and agent files (``best.toml``
written by ``python -m benchmarks.tune``; see :mod:`agents.presets`), given relative to the
suite file's folder or to the working directory. A return threshold is a config
override: ``config = { stop_at_return = 475.0 }``.

An ``[[envs]]`` id may also be a **graph-learning task** (not RL), in the ``graphs/`` namespace:
``graphs/SBM``, ``graphs/KarateClub`` (node classification), ``graphs/Motifs`` (graph
classification), see :data:`graphs.tasks.TASKS`. There the agent ``gcn``/``gat``/``gin``/``sage``
is the same GNN with a linear head, ``<model>-temperature`` adds temperature scaling and
``<model>-bayes`` a Bayesian head; ``steps`` counts **epochs**, ``env_kwargs`` are the task
builder's arguments (``feature_noise = 2.0``), ``config`` holds
:class:`~graphs.tasks.GraphTaskConfig` fields (``hidden_size``, ``lr``, ``dropout``...) and
``num_envs`` is an error. The trial's score is its test accuracy (an RL trial's is its final
return), so one suite can compare agents across both kinds of task. Since top-level ``steps``,
``num_envs`` and ``config`` apply to every table, a mixed suite sets them per ``[[envs]]``
(see ``graph.toml``).

Loading checks the file's structure: an unknown key is an error naming the closest known key, a
wrong type an error naming the expected one. Whether the environment ids, agents and PPO options
exist, whether their values have their fields' types and whether each agent fits its environment
(:func:`benchmarks.runner.check_agent_fits`) is checked by :func:`benchmarks.runner.check_trials`
before anything runs.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from benchmarks.reference import RL_ZOO_CARTPOLE

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "Suite",
    "SuiteError",
    "ThroughputSuite",
    "Trial",
    "list_suites",
    "load_suite",
    "parse_suite",
]


class SuiteError(ValueError):
    """A suite cannot be found or its file is invalid; the message says where and what to do."""


@dataclass(frozen=True)
class Trial:
    """One training: an agent on an environment with one seed.

    Attributes:
        env_id: Native id (``umbra/CartPole-v0``), Gymnasium id, ``package.module:ClassName`` or
            graph-learning task (``graphs/SBM``, :data:`graphs.tasks.TASKS`).
        agent: Agent name from :data:`agents.presets.AGENTS` (or, on a learning task, from
            :data:`graphs.tasks.GRAPH_TASK_AGENTS`).
        seed: Seed of the environment and the network.
        steps: Environment steps to train for (epochs on a learning task); ``None`` keeps the
            agent preset's ``total_steps``.
        num_envs: Parallel environment copies; ``None`` keeps the agent preset's.
        env_kwargs: Constructor arguments of the environment.
        config: Further ``PPOConfig`` overrides (field name -> value).
    """

    env_id: str
    agent: str
    seed: int
    steps: int | None = None
    num_envs: int | None = None
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, int]:
        """``(env_id, agent, seed)``: what makes a trial unique within a suite."""
        return (self.env_id, self.agent, self.seed)


@dataclass(frozen=True)
class Suite:
    """A train suite: a name (its folder under the log root) and its trials, in order.

    Attributes:
        name: Folder under the log root.
        trials: The trials, in order.
        description: One line.
        source: Where the file was read from.
        references: Env id -> ``{"random": R, "expert": E}``, the returns that normalised
            scores map to 0 and 1.
        text: The suite file's text, recorded with the results.
    """

    name: str
    trials: tuple[Trial, ...]
    description: str = ""
    source: str = ""
    references: dict[str, dict[str, float]] = field(default_factory=dict)
    text: str = ""

    def with_seeds(self, seeds: int) -> Suite:
        """The same suite with seeds ``0..seeds-1`` for every (env, agent) of its trials."""
        templates = {(t.env_id, t.agent): t for t in reversed(self.trials)}  # first one wins
        order = dict.fromkeys((t.env_id, t.agent) for t in self.trials)
        trials = tuple(dataclasses.replace(templates[key], seed=seed)
                       for key in order for seed in range(seeds))
        return dataclasses.replace(self, trials=trials)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (the ``suite.json`` recorded beside the results)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Suite:
        """Inverse of :meth:`to_dict`."""
        trials = tuple(Trial(**t) for t in data.get("trials", []))
        return cls(**{**data, "trials": trials})


@dataclass(frozen=True)
class ThroughputSuite:
    """Settings of the Umbra-vs-stable-baselines3 speed comparison (:mod:`benchmarks.throughput`).

    Attributes:
        name: Folder name under the log root.
        description: One line.
        seeds: One run of each library per seed; the report gives per-seed values and medians.
        threshold: Return whose reaching (mean of the last 20 finished episodes) stops a run.
        umbra: ``env`` (id), ``agent`` and ``config`` (``PPOConfig`` overrides of the preset).
        sb3: Hyperparameters of the stable-baselines3 reference (see
            :func:`benchmarks.reference.train_sb3_ppo`).
        full: Optional full-training speed run of Umbra, no early stop: ``num_envs`` and
            ``steps`` on the CPU, ``cuda_num_envs`` and ``cuda_steps`` on a GPU; empty when the
            file has no ``[full]`` table.
        memory: Optional memory-agent comparison (:func:`benchmarks.throughput.run_memory`):
            ``env``, ``agents``, ``config`` (overrides of the agents' presets), ``sb3``
            (overrides of RL-Zoo's RecurrentPPO settings), ``windows`` and ``window_steps``
            (transformer vs linear as the window grows).
        checks: Optional cost of the default input checks (:mod:`benchmarks.check_cost`):
            ``num_envs``, ``steps`` and ``repeats`` of PPO trainings with the checks and with
            them bypassed; empty when the file has no ``[checks]`` table.
        source: Where the file was read from.
    """

    name: str
    description: str
    seeds: tuple[int, ...]
    threshold: float
    umbra: dict[str, Any]
    sb3: dict[str, Any]
    full: dict[str, Any] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    source: str = ""


# ---------------------------------------------------------------------------------- finding files
def list_suites() -> list[str]:
    """Names of the suites shipped in this folder, sorted."""
    folder = resources.files(__name__)
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_suite(name_or_path: str | Path) -> Suite | ThroughputSuite:
    """Read and validate a suite by shipped name (``"smoke"``) or by path (``"my/suite.toml"``).

    Raises:
        SuiteError: no such suite (with the close names), invalid TOML, or an invalid entry.
    """
    text_or_path = str(name_or_path)
    path = Path(text_or_path)
    if path.suffix == ".toml" or path.is_file():  # a folder named like a suite (bayes/) is not
        if not path.is_file():
            raise SuiteError(f"suite file {text_or_path!r} does not exist")
        return parse_suite(path.read_text(encoding="utf-8"), name=path.stem, source=str(path))
    shipped = list_suites()
    if text_or_path not in shipped:
        close = difflib.get_close_matches(text_or_path, shipped, n=3)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise SuiteError(
            f"unknown suite {text_or_path!r}; {hint}shipped suites: {', '.join(shipped)} "
            "(or pass the path of a .toml file)"
        )
    resource = resources.files(__name__) / f"{text_or_path}.toml"
    text = resource.read_text(encoding="utf-8")
    return parse_suite(text, name=text_or_path, source=str(resource))


def parse_suite(text: str, name: str, source: str = "<string>") -> Suite | ThroughputSuite:
    """Validate the TOML ``text`` of a suite called ``name`` (``source`` appears in errors)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SuiteError(f"{source}: invalid TOML: {err}") from err
    kind = data.get("kind", "train")
    if kind == "train":
        return _parse_train(data, name, source, text)
    if kind == "throughput":
        return _parse_throughput(data, name, source)
    raise SuiteError(f"{source}: kind must be 'train' or 'throughput', got {kind!r}")


# ---------------------------------------------------------------------------------- train suites
_TOP_KEYS = ("kind", "description", "agents", "seeds", "steps", "num_envs", "config", "envs",
             "trials")
_ENV_KEYS = ("id", "agents", "seeds", "steps", "num_envs", "env_kwargs", "config", "reference")
_TRIAL_KEYS = ("env", "agent", "seed", "steps", "num_envs", "env_kwargs", "config")


def _parse_train(data: dict[str, Any], name: str, source: str, text: str) -> Suite:
    _check_keys(data, _TOP_KEYS, source)
    where = source
    agents = _agents(data.get("agents", ["ppo"]), f"{where}: agents")
    seeds = _seeds(data.get("seeds", 1), f"{where}: seeds")
    steps = _opt_int(data.get("steps"), f"{where}: steps")
    num_envs = _opt_int(data.get("num_envs"), f"{where}: num_envs")
    config = _table(data.get("config", {}), f"{where}: config")

    trials: list[Trial] = []
    references: dict[str, dict[str, float]] = {}
    for i, env in enumerate(_array_of_tables(data.get("envs", []), f"{where}: envs")):
        at = f"{where}: envs[{i}]"
        _check_keys(env, _ENV_KEYS, at)
        env_id = _string(env.get("id"), f"{at}: id")
        if "reference" in env:
            references[env_id] = _reference(env["reference"], f"{at}: reference")
        for agent in _agent_paths(_agents(env.get("agents", agents), f"{at}: agents"), source):
            for seed in _seeds(env.get("seeds", seeds), f"{at}: seeds"):
                trials.append(
                    Trial(
                        env_id=env_id,
                        agent=agent,
                        seed=seed,
                        steps=_opt_int(env.get("steps", steps), f"{at}: steps"),
                        num_envs=_opt_int(env.get("num_envs", num_envs), f"{at}: num_envs"),
                        env_kwargs=_table(env.get("env_kwargs", {}), f"{at}: env_kwargs"),
                        config={**config, **_table(env.get("config", {}), f"{at}: config")},
                    )
                )
    for i, trial in enumerate(_array_of_tables(data.get("trials", []), f"{where}: trials")):
        at = f"{where}: trials[{i}]"
        _check_keys(trial, _TRIAL_KEYS, at)
        for key in ("env", "agent", "seed"):
            if key not in trial:
                raise SuiteError(f"{at}: missing key {key!r} (a trial needs env, agent and seed)")
        trials.append(
            Trial(
                env_id=_string(trial["env"], f"{at}: env"),
                agent=_agent_paths(_agents([trial["agent"]], f"{at}: agent"), source)[0],
                seed=_int(trial["seed"], f"{at}: seed"),
                steps=_opt_int(trial.get("steps", steps), f"{at}: steps"),
                num_envs=_opt_int(trial.get("num_envs", num_envs), f"{at}: num_envs"),
                env_kwargs=_table(trial.get("env_kwargs", {}), f"{at}: env_kwargs"),
                config={**config, **_table(trial.get("config", {}), f"{at}: config")},
            )
        )
    if not trials:
        raise SuiteError(f"{source}: the suite has no trials; add [[envs]] or [[trials]] tables")
    seen: set[tuple[str, str, int]] = set()
    for trial in trials:
        if trial.key in seen:
            raise SuiteError(
                f"{source}: trial env={trial.env_id!r} agent={trial.agent!r} seed={trial.seed} "
                "appears twice; each (env, agent, seed) has one folder, so it must be unique"
            )
        seen.add(trial.key)
    return Suite(name=name, trials=tuple(trials), description=str(data.get("description", "")),
                 source=source, references=references, text=text)


# ---------------------------------------------------------------------------------- throughput
_THROUGHPUT_KEYS = ("kind", "description", "seeds", "threshold", "umbra", "sb3", "full",
                    "memory", "checks")
_CHECKS_KEYS = ("num_envs", "steps", "repeats")
_MEMORY_KEYS = ("env", "agents", "config", "sb3", "windows", "window_steps")
_UMBRA_KEYS = ("env", "agent", "config")
_SB3_KEYS = tuple(RL_ZOO_CARTPOLE)
_FULL_KEYS = ("num_envs", "steps", "cuda_num_envs", "cuda_steps")


def _parse_throughput(data: dict[str, Any], name: str, source: str) -> ThroughputSuite:
    _check_keys(data, _THROUGHPUT_KEYS, source)
    for section in ("umbra", "sb3"):
        if section not in data:
            raise SuiteError(f"{source}: a throughput suite needs a [{section}] table")
    umbra = _table(data["umbra"], f"{source}: umbra")
    _check_keys(umbra, _UMBRA_KEYS, f"{source}: [umbra]")
    umbra.setdefault("env", "umbra/CartPole-v0")
    umbra.setdefault("agent", "ppo")
    umbra["config"] = _table(umbra.get("config", {}), f"{source}: [umbra] config")
    sb3 = _table(data["sb3"], f"{source}: sb3")
    _check_keys(sb3, _SB3_KEYS, f"{source}: [sb3]")
    full = _table(data.get("full", {}), f"{source}: full")
    _check_keys(full, _FULL_KEYS, f"{source}: [full]")
    checks = _table(data.get("checks", {}), f"{source}: checks")
    _check_keys(checks, _CHECKS_KEYS, f"{source}: [checks]")
    memory = _table(data.get("memory", {}), f"{source}: memory")
    _check_keys(memory, _MEMORY_KEYS, f"{source}: [memory]")
    if memory:
        memory["agents"] = _agents(memory.get("agents", ["lstm"]), f"{source}: [memory] agents")
        _check_keys(_table(memory.get("sb3", {}), f"{source}: [memory] sb3"), _SB3_KEYS,
                    f"{source}: [memory] sb3")
    threshold = data.get("threshold", 475.0)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise SuiteError(f"{source}: threshold must be a number, got {threshold!r}")
    return ThroughputSuite(
        name=name,
        description=str(data.get("description", "")),
        seeds=tuple(_seeds(data.get("seeds", 1), f"{source}: seeds")),
        threshold=float(threshold),
        umbra=umbra,
        sb3=sb3,
        full=full,
        memory=memory,
        checks=checks,
        source=source,
    )


# ---------------------------------------------------------------------------------- checks
def _check_keys(table: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise SuiteError(
                f"{where}: unknown key {key!r}; {hint}known keys: {', '.join(allowed)}"
            )


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SuiteError(f"{where}: expected an integer, got {value!r}")
    return value


def _opt_int(value: Any, where: str) -> int | None:
    if value is None:
        return None
    value = _int(value, where)
    if value < 1:
        raise SuiteError(f"{where}: expected a positive integer, got {value}")
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise SuiteError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SuiteError(f"{where}: expected a table ({{ key = value }}), got {value!r}")
    return dict(value)


def _array_of_tables(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise SuiteError(f"{where}: expected an array of tables ([[...]] sections), got {value!r}")
    return value


def _reference(value: Any, where: str) -> dict[str, float]:
    table = _table(value, where)
    _check_keys(table, ("random", "expert"), where)
    for key in ("random", "expert"):
        if key not in table:
            raise SuiteError(f"{where}: missing key {key!r} (a reference needs random and expert)")
        if isinstance(table[key], bool) or not isinstance(table[key], (int, float)):
            raise SuiteError(f"{where}: {key} must be a number, got {table[key]!r}")
    if table["random"] == table["expert"]:
        raise SuiteError(f"{where}: random and expert must differ, both are {table['random']}")
    return {"random": float(table["random"]), "expert": float(table["expert"])}


def _agents(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise SuiteError(f"{where}: expected a non-empty list of agent names, got {value!r}")
    return [_string(v, where) for v in value]


def _agent_paths(agents: list[str], source: str) -> list[str]:
    """Agent files (``*.toml``, :func:`agents.presets.read_agent_file`) given relative to the
    suite file's folder, as paths from here; other names as they are."""
    folder = Path(source).parent
    return [str(folder / a) if a.endswith(".toml") and not Path(a).is_absolute()
            and (folder / a).is_file() else a for a in agents]


def _seeds(value: Any, where: str) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise SuiteError(f"{where}: a number of seeds must be at least 1, got {value}")
        return list(range(value))
    if not isinstance(value, list) or not value:
        raise SuiteError(f"{where}: expected a number of seeds K (0..K-1) or a list of seeds")
    seeds = [_int(v, where) for v in value]
    if len(set(seeds)) != len(seeds):
        raise SuiteError(f"{where}: repeated seed in {seeds}")
    return seeds
