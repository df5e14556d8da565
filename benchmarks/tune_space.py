"""Search spaces of ``python -m benchmarks.tune``: TOML files, Optuna distributions, constraints.

A space file names config keys and how to sample them, one inline table per parameter::

    extends = "ppo"        # optional: start from a shipped space (benchmarks/tune_spaces/ppo.toml)
    replace = false        # --space files only: true starts from nothing instead of the
                           # agent's default space
    remove = ["ent_coef"]  # optional: drop parameters of the space it starts from

    [params]
    learning_rate = { type = "float", low = 1e-4, high = 1e-2, log = true }
    clip_coef = { type = "float", low = 0.1, high = 0.4, step = 0.05 }
    update_epochs = { type = "int", low = 1, high = 10 }           # step = 1 by default
    num_envs = { type = "int", low = 8, high = 128, log = true }
    num_steps = { type = "categorical", choices = [16, 32, 64] }
    "core_kwargs.window" = { type = "categorical", choices = [16, 32, 64] }

``float`` and ``int`` parameters take ``low``, ``high``, ``log`` (sample the logarithm; needs
``low > 0``) and ``step`` (not with ``log``); ``categorical`` takes non-empty ``choices`` of
numbers, strings, booleans. They are Optuna's ``suggest_float``, ``suggest_int`` and
``suggest_categorical``. A key is a config field (``PPOConfig`` for Umbra agents; an
``SB3Config`` field or an argument of the algorithm for ``sb3-*`` baselines; a
``GraphTaskConfig`` field for ``graphs/...`` tasks) or, dotted, one entry of a table field
(``core_kwargs.window``), exactly as ``--set`` takes them.

**Default spaces** ship in ``benchmarks/tune_spaces/`` per agent family
(:func:`default_space_name`): ``ppo`` (learning rate, num_envs, num_steps, update_epochs,
num_minibatches, gamma, gae_lambda, ent_coef, clip_coef, hidden_size), ``recurrent`` (+
sequence_length, for lstm and gru cores), ``linear`` and ``transformer`` (+ core_kwargs
num_heads, num_layers and the transformer's window), ``gnn`` (+ encoder_kwargs model,
num_layers, readout), ``sb3-ppo`` and ``sb3-recurrent-ppo`` (SB3's argument names), and
``graph-task`` (learning tasks).

**--space FILE extends** the agent's default space: its parameters replace those of the same
key and add new ones, ``remove`` drops some; ``replace = true`` (or ``extends = "name"``)
starts from nothing (or from that shipped space) instead. A key fixed with ``--set`` is not
searched.

**Constraints** are resolved, never a crash (:func:`resolve`): a rollout larger than the
budget gets fewer steps per copy, and ``num_minibatches`` (``batch_size`` for SB3),
``sequence_length`` and ``core_kwargs.num_heads`` that do not divide what they must become the
nearest divisor; the sampler keeps the sampled value, the trial trains with the resolved one
(both recorded in the trial's user attributes). What is still invalid is pruned.
"""

from __future__ import annotations

import difflib
import inspect
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: Parameter types and the keys each takes.
PARAM_KEYS: dict[str, tuple[str, ...]] = {
    "float": ("type", "low", "high", "log", "step"),
    "int": ("type", "low", "high", "log", "step"),
    "categorical": ("type", "choices"),
}
#: Top-level keys of a space file.
FILE_KEYS = ("extends", "replace", "remove", "params")
#: The folder of the shipped spaces, in the ``benchmarks`` package (its package data).
SPACES_FOLDER = "tune_spaces"


class SpaceError(ValueError):
    """A space file is invalid; the message names the file, the parameter and what to do."""


@dataclass(frozen=True)
class Param:
    """One searched config key: an Optuna distribution by another name.

    Attributes:
        name: The config key (``learning_rate``, ``core_kwargs.window``).
        type: ``"float"``, ``"int"`` or ``"categorical"``.
        low: Lower bound (float and int).
        high: Upper bound, included.
        log: Sample in log space.
        step: Discretisation step (``None``: continuous floats, 1 for ints).
        choices: The values of a categorical parameter.
    """

    name: str
    type: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] = ()

    def distribution(self) -> Any:
        """The Optuna distribution."""
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.type == "categorical":
            return CategoricalDistribution(self.choices)
        if self.type == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log,
                                   step=int(self.step or 1))
        return FloatDistribution(float(self.low), float(self.high), log=self.log, step=self.step)

    def suggest(self, trial: Any) -> Any:
        """Sample this parameter for an Optuna ``trial``."""
        if self.type == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.type == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log,
                                     step=int(self.step or 1))
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log,
                                   step=self.step)

    @property
    def finite(self) -> bool:
        """Whether the values are countable (what a grid needs): not a continuous float."""
        return self.type != "float" or self.step is not None

    def values(self) -> list[Any]:
        """Every value of a finite parameter (the grid's axis); the bounds for a continuous one."""
        if self.type == "categorical":
            return list(self.choices)
        if not self.finite:
            return [self.low, self.high]
        step = self.step or 1
        count = int(math.floor((self.high - self.low) / step + 1e-9)) + 1
        values = [self.low + i * step for i in range(count)]
        return [int(v) for v in values] if self.type == "int" else [float(v) for v in values]

    def to_dict(self) -> dict[str, Any]:
        """The parameter as its file writes it (for ``study.json`` and the report)."""
        if self.type == "categorical":
            return {"type": self.type, "choices": list(self.choices)}
        data = {"type": self.type, "low": self.low, "high": self.high}
        if self.log:
            data["log"] = True
        if self.step is not None:
            data["step"] = self.step
        return data


@dataclass(frozen=True)
class Space:
    """The parameters of a study, in order, and the files they came from."""

    params: dict[str, Param]
    sources: tuple[str, ...] = ()
    dropped: tuple[str, ...] = field(default=())

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Sample every parameter for an Optuna ``trial``: config key -> value."""
        return {name: param.suggest(trial) for name, param in self.params.items()}

    def to_dict(self) -> dict[str, Any]:
        return {name: param.to_dict() for name, param in self.params.items()}

    def grid(self) -> dict[str, list[Any]]:
        """The axes of Optuna's ``GridSampler``.

        Raises:
            SpaceError: a continuous float parameter (a grid needs a ``step`` or ``choices``).
        """
        continuous = [name for name, p in self.params.items() if not p.finite]
        if continuous:
            raise SpaceError(
                f"--sampler grid needs a finite space, and {', '.join(continuous)} "
                f"{'is a continuous float' if len(continuous) == 1 else 'are continuous floats'}"
                ": give each a step or choices in a --space file, fix them with --set, or use "
                "--sampler random or tpe")
        return {name: p.values() for name, p in self.params.items()}


# ---------------------------------------------------------------------------------- files
def list_spaces() -> list[str]:
    """Names of the shipped spaces, sorted."""
    folder = resources.files("benchmarks") / SPACES_FOLDER
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def shipped_space(name: str) -> Space:
    """The shipped space ``name`` (its ``extends`` chain resolved).

    Raises:
        SpaceError: no such space (naming the close ones) or an invalid file.
    """
    shipped = list_spaces()
    if name not in shipped:
        close = difflib.get_close_matches(name, shipped, n=3)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise SpaceError(f"unknown search space {name!r}; {hint}shipped spaces: "
                         f"{', '.join(shipped)}")
    resource = resources.files("benchmarks") / SPACES_FOLDER / f"{name}.toml"
    return _compose(resource.read_text(encoding="utf-8"), f"tune_spaces/{name}.toml",
                    base=None, shipped=True)


def load_space(path: str | Path, default: Space) -> Space:
    """The space of a ``--space`` file: ``default`` extended by it (see the module docstring).

    Raises:
        SpaceError: no such file, invalid TOML or an invalid entry.
    """
    path = Path(path)
    if not path.is_file():
        raise SpaceError(f"--space {path}: no such file")
    return _compose(path.read_text(encoding="utf-8"), str(path), base=default, shipped=False)


def parse_params(table: Any, source: str) -> dict[str, Param]:
    """The ``[params]`` table of a space file.

    Raises:
        SpaceError: a parameter that is not a table, an unknown key or type (naming the close
            one), missing or non-numeric bounds, ``low > high``, ``log`` with ``low <= 0`` or
            with a ``step``, a non-positive step, or empty, repeated or non-scalar choices.
    """
    if not isinstance(table, Mapping):
        raise SpaceError(f"{source}: params must be a table ([params])")
    params = {}
    for name, spec in table.items():
        where = f"{source}: parameter {name!r}"
        if not isinstance(spec, Mapping):
            raise SpaceError(f"{where}: expected an inline table such as "
                             "{ type = \"float\", low = 1e-4, high = 1e-2, log = true }, "
                             f"got {spec!r}")
        kind = spec.get("type")
        if kind not in PARAM_KEYS:
            close = difflib.get_close_matches(str(kind), list(PARAM_KEYS), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise SpaceError(f"{where}: type must be one of {', '.join(PARAM_KEYS)}; {hint}"
                             f"got {kind!r}")
        _check_keys(spec, PARAM_KEYS[kind], where)
        params[name] = _parse_param(name, kind, spec, where)
    return params


def _parse_param(name: str, kind: str, spec: Mapping[str, Any], where: str) -> Param:
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise SpaceError(f"{where}: choices must be a non-empty list, got {choices!r}")
        for choice in choices:
            if not isinstance(choice, (bool, int, float, str)):
                raise SpaceError(f"{where}: a choice must be a number, string or boolean "
                                 f"(Optuna's categorical values), got {choice!r}")
        if len({repr(c) for c in choices}) != len(choices):
            raise SpaceError(f"{where}: repeated choice in {choices}")
        return Param(name, kind, choices=tuple(choices))
    number = int if kind == "int" else (int, float)
    for key in ("low", "high"):
        value = spec.get(key)
        if isinstance(value, bool) or not isinstance(value, number):
            wanted = "an integer" if kind == "int" else "a number"
            raise SpaceError(f"{where}: {key} must be {wanted}, got {value!r}")
    low, high = spec["low"], spec["high"]
    if low > high:
        raise SpaceError(f"{where}: low = {low} > high = {high}; swap them")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise SpaceError(f"{where}: log must be true or false, got {log!r}")
    if log and low <= 0:
        raise SpaceError(f"{where}: log = true needs low > 0 (the logarithm of {low} is "
                         "undefined); raise low or drop log")
    step = spec.get("step")
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, number) or step <= 0:
            raise SpaceError(f"{where}: step must be a positive "
                             f"{'integer' if kind == 'int' else 'number'}, got {step!r}")
        if log:
            raise SpaceError(f"{where}: step and log = true cannot go together (Optuna "
                             "samples either on a grid or in log space); drop one")
    return Param(name, kind, low=low, high=high, log=log, step=step)


def _compose(text: str, source: str, base: Space | None, shipped: bool) -> Space:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpaceError(f"{source}: invalid TOML: {err}") from None
    _check_keys(data, FILE_KEYS if not shipped else ("extends", "remove", "params"), source)
    extends, replace = data.get("extends"), data.get("replace", False)
    if not isinstance(replace, bool):
        raise SpaceError(f"{source}: replace must be true or false, got {replace!r}")
    if extends is not None:
        if not isinstance(extends, str):
            raise SpaceError(f"{source}: extends must name a shipped space, got {extends!r}")
        start = shipped_space(extends)
    elif replace or base is None:
        start = Space({})
    else:
        start = base
    params = dict(start.params)
    remove = data.get("remove", [])
    if not isinstance(remove, list) or not all(isinstance(r, str) for r in remove):
        raise SpaceError(f"{source}: remove must be a list of parameter names, got {remove!r}")
    for name in remove:
        if name not in params:
            close = difflib.get_close_matches(name, list(params), n=3)
            hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
            raise SpaceError(f"{source}: remove names {name!r}, which the space it extends "
                             f"does not search; {hint}it searches: "
                             f"{', '.join(params) or 'nothing'}")
        del params[name]
    params.update(parse_params(data.get("params", {}), source))
    if not params:
        raise SpaceError(f"{source}: the space has no parameters; add a [params] table")
    return Space(params, (*start.sources, source))


def _check_keys(table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise SpaceError(f"{where}: unknown key {key!r}; {hint}known keys: "
                             f"{', '.join(allowed)}")


# ---------------------------------------------------------------------------------- agents
def default_space_name(config: Any) -> str:
    """The shipped space of the agent whose config is ``config`` (see the module docstring)."""
    from agents.ppo import PPOConfig
    from agents.sb3 import SB3Config

    if isinstance(config, SB3Config):
        return "sb3-recurrent-ppo" if config.agent == "sb3-recurrent-ppo" else "sb3-ppo"
    if not isinstance(config, PPOConfig):
        return "graph-task"
    if config.core in ("lstm", "gru"):
        return "recurrent"
    if config.core in ("transformer", "linear"):
        return config.core
    if config.encoder_kwargs.get("model") not in (None, "flat"):
        return "gnn"
    return "ppo"


def check_keys(space: Space, config: Any, source: str) -> None:
    """Refuse a parameter that names no key of ``config`` (naming the close ones).

    The first part of a key must be a field of the config (or, for a baseline, an argument of
    its algorithm); the entries of ``core_kwargs`` must be arguments of the config's core and
    those of ``encoder_kwargs`` options of the graph encoder. Values are checked afterwards, by
    building configs (:func:`benchmarks.runner.build_config`).

    Raises:
        SpaceError: an unknown key.
    """
    from agents.memory import CORES
    from agents.sb3 import SB3Config, _constructor_args
    from graphs.encoders import GraphEncoder

    names = list(type(config).__dataclass_fields__)
    what = f"a {type(config).__name__} field"
    if isinstance(config, SB3Config):
        names += _constructor_args(config.agent)
        what = f"an SB3Config field or an argument of {config.agent}'s algorithm"
    entries: dict[str, list[str]] = {}
    if hasattr(config, "core") and config.core in CORES:
        entries["core_kwargs"] = _arguments(CORES[config.core], skip=("input_size",
                                                                       "hidden_size"))
        entries["encoder_kwargs"] = [*_arguments(GraphEncoder, skip=("in_features",
                                                                     "hidden_size")),
                                     "node_head"]
    for name in space.params:
        head, _, rest = name.partition(".")
        if head not in names:
            _unknown(name, head, names, what, source)
        if rest and head in entries and "." not in rest and rest not in entries[head]:
            _unknown(name, rest, entries[head], f"an entry of {head}", source)


def _arguments(cls: type, skip: tuple[str, ...]) -> list[str]:
    return [p for p in inspect.signature(cls.__init__).parameters
            if p not in ("self", "args", "kwargs", *skip)]


def _unknown(name: str, part: str, known: list[str], what: str, source: str) -> None:
    close = difflib.get_close_matches(part, known, n=3)
    hint = (f"did you mean {', '.join(repr(c) for c in close)}?" if close
            else f"known: {', '.join(known)}")
    raise SpaceError(f"{source}: parameter {name!r}: {part!r} is not {what}; {hint}")


# ---------------------------------------------------------------------------------- constraints
def resolve(values: dict[str, Any], base: Any) -> dict[str, tuple[Any, Any]]:
    """Make sampled ``values`` valid together, in place; return what changed.

    Only sampled keys change; ``base`` (the config without them: preset, ``--set``, budget)
    gives every other value. In order:

    - Umbra PPO: a rollout ``num_envs * num_steps`` larger than ``total_steps`` gets
      ``num_steps = max(1, total_steps // num_envs)`` (each trial costs about its budget);
      ``sequence_length`` becomes the divisor of ``num_steps`` nearest to it;
      ``num_minibatches`` the divisor of ``num_envs * num_steps`` nearest to it;
      ``core_kwargs.num_heads`` the divisor of ``hidden_size`` nearest to it.
    - stable-baselines3: ``n_steps`` is lowered as ``num_steps`` above, and ``batch_size``
      becomes the divisor (at least 2) of ``n_steps * num_envs`` nearest to it.

    Ties go to the smaller divisor.

    Args:
        values: Config key -> sampled value; changed in place.
        base: The config built without the sampled values.

    Returns:
        Key -> ``(sampled, used)`` for every changed key.
    """
    from agents.ppo import PPOConfig
    from agents.sb3 import SB3Config

    changed: dict[str, tuple[Any, Any]] = {}

    def get(key: str, default: Any = None) -> Any:
        if key in values:
            return values[key]
        head, _, rest = key.partition(".")
        if isinstance(base, SB3Config) and head not in type(base).__dataclass_fields__:
            return base.hyperparams.get(key, default)
        value = getattr(base, head, default)
        if rest:
            return value.get(rest, default) if isinstance(value, dict) else default
        return value

    def set_(key: str, value: Any) -> None:
        if key in values and values[key] != value:
            changed[key] = (changed.get(key, (values[key],))[0], value)
            values[key] = value

    if isinstance(base, PPOConfig):
        total, envs_, steps = base.total_steps, get("num_envs"), get("num_steps")
        if envs_ * steps > total and "num_steps" in values:
            steps = max(1, total // envs_)
            set_("num_steps", steps)
        if get("sequence_length") is not None and "sequence_length" in values:
            set_("sequence_length", nearest_divisor(steps, get("sequence_length")))
        if "num_minibatches" in values:
            set_("num_minibatches", nearest_divisor(envs_ * steps, get("num_minibatches")))
        if "core_kwargs.num_heads" in values:
            heads = nearest_divisor(get("hidden_size"), get("core_kwargs.num_heads"))
            set_("core_kwargs.num_heads", heads)
    elif isinstance(base, SB3Config):
        import stable_baselines3

        defaults = inspect.signature(stable_baselines3.PPO.__init__).parameters
        envs_ = get("num_envs")
        steps = get("n_steps", defaults["n_steps"].default)
        if envs_ * steps > base.total_steps and "n_steps" in values:
            steps = max(1, base.total_steps // envs_)
            set_("n_steps", steps)
        if "batch_size" in values:
            set_("batch_size", nearest_divisor(envs_ * steps, get("batch_size"), at_least=2))
    return changed


def nearest_divisor(n: int, target: int, at_least: int = 1) -> int:
    """The divisor of ``n`` (at least ``at_least`` where ``n`` allows) nearest to ``target``;
    ties go to the smaller one."""
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    allowed = [d for d in divisors if d >= at_least] or divisors
    return min(allowed, key=lambda d: (abs(d - target), d))
