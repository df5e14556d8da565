"""``envs.make``: one call for native ids, Gymnasium ids and ``module:Class`` environments.

Native environments are registered here with :func:`register` (declaratively, in
``envs/__init__.py``) and also with Gymnasium under the ``umbra/`` namespace, so that
``gymnasium.make("umbra/CartPole-v0")`` gives a single-copy ``gymnasium.Env`` and
``gymnasium.make_vec("umbra/CartPole-v0", num_envs=8)`` a numpy vector env.

The adapters of ``envs.interop`` are imported inside the functions that use them: they import
this module (to name the environments they wrap), and an ecosystem (PettingZoo) is imported only
when an environment of it is made.
"""

from __future__ import annotations

import copy
import difflib
import functools
import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import torch

from envs.core import BatchedEnv, check_num_envs, resolve_device


@dataclass(frozen=True)
class EnvSpec:
    """What ``envs.make`` needs to build a native environment.

    Attributes:
        id: Versioned id, ``umbra/Name-vN``.
        entry_point: ``"module:Class"`` of a :class:`~envs.core.BatchedEnv` subclass.
        kwargs: Defaults passed to the class (an Easy/Hard variant is the same class with other
            defaults); the caller's kwargs override them.
    """

    id: str
    entry_point: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def load(self) -> type[BatchedEnv]:
        return load_entry_point(self.entry_point)

    @property
    def kind(self) -> str:
        return self.load().kind

    @property
    def description(self) -> str:
        return self.load().description


_REGISTRY: dict[str, EnvSpec] = {}
#: Ids in this namespace also take ``previous_action=True``: the environment comes wrapped in
#: :class:`envs.popgym.previous_action.PreviousAction` (POPGym's baselines' observation).
POPGYM_NAMESPACE = "popgym/"
#: Keywords that ``gymnasium.make`` takes itself rather than passing to the environment.
_GYM_MAKE_KWARGS = ("max_episode_steps", "render_mode", "disable_env_checker")


def register(env_id: str, entry_point: str, **kwargs: Any) -> None:
    """Register a native environment under ``env_id`` (``umbra/Name-vN``) here and with Gymnasium.

    Args:
        env_id: The versioned id. Change the behaviour of an environment -> bump the version.
        entry_point: ``"module:Class"`` of a :class:`~envs.core.BatchedEnv` subclass; imported
            lazily, on first use.
        **kwargs: Default constructor arguments for this id.
    """
    if env_id in _REGISTRY:
        raise ValueError(f"{env_id!r} is already registered (to {_REGISTRY[env_id].entry_point})")
    spec = EnvSpec(env_id, entry_point, dict(kwargs))
    _REGISTRY[env_id] = spec
    gym.register(
        id=env_id,
        entry_point=functools.partial(_gym_entry_point, env_id),
        vector_entry_point=functools.partial(_vector_entry_point, env_id),
        disable_env_checker=True,
    )


def _single_agent(env_id: str) -> None:
    """``TypeError`` if ``env_id`` is a multi-agent id, which Gymnasium cannot hold."""
    if spec(env_id).kind == "multi-agent":
        raise TypeError(
            f"{env_id!r} is a multi-agent environment, which is no gymnasium.Env: use "
            f"envs.make_pettingzoo({env_id!r}) for a PettingZoo env, or envs.make({env_id!r}, "
            "num_envs=...) for the batched torch env"
        )


def _gym_entry_point(env_id: str, **kwargs: Any) -> gym.Env:
    from envs.interop.gymnasium import BatchedToGymEnv

    _single_agent(env_id)
    kwargs.pop("render_mode", None)
    return BatchedToGymEnv(make(env_id, num_envs=1, **kwargs))


def _vector_entry_point(env_id: str, num_envs: int = 1, **kwargs: Any) -> gym.vector.VectorEnv:
    from envs.interop.gymnasium import BatchedToNumpyVecEnv

    _single_agent(env_id)
    kwargs.pop("render_mode", None)
    return BatchedToNumpyVecEnv(make(env_id, num_envs=num_envs, **kwargs))


def list_ids(kind: str | None = None) -> list[str]:
    """Every native id, sorted; only those of one ``kind`` ("single-agent", "multi-agent", ...)
    if given."""
    if kind is None:
        return sorted(_REGISTRY)
    return sorted(env_id for env_id, native in _REGISTRY.items() if native.kind == kind)


def registered_gym_spec(batched: BatchedEnv) -> gym.envs.registration.EnvSpec | None:
    """Gymnasium's spec of the one native id registered for ``batched``'s class, if any.

    The id must name the class without default arguments (an Easy/Hard variant does not name
    it), and exactly one id may do so; otherwise ``None``. The adapters of ``envs.interop``
    name the environments they wrap with it.
    """
    cls = type(batched)
    entry_point = f"{cls.__module__}:{cls.__qualname__}"
    matches = [i for i in list_ids() if spec(i).entry_point == entry_point and not spec(i).kwargs]
    return copy.deepcopy(gym.spec(matches[0])) if len(matches) == 1 else None


def spec(env_id: str) -> EnvSpec:
    """The :class:`EnvSpec` of a native id; an unknown id is a ``ValueError`` naming close ones."""
    if env_id not in _REGISTRY:
        raise ValueError(_unknown_id_message(env_id))
    return _REGISTRY[env_id]


def load_entry_point(entry_point: str) -> Any:
    """Import ``"package.module:Name"`` and return ``Name``."""
    module_name, sep, attr = entry_point.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected 'package.module:ClassName', got {entry_point!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"cannot import module {module_name!r} of {entry_point!r}: {err}") from err
    try:
        return getattr(module, attr)
    except AttributeError as err:
        close = difflib.get_close_matches(attr, dir(module), n=3)
        raise ValueError(
            f"module {module_name!r} has no attribute {attr!r}"
            + (f"; did you mean {', '.join(close)}?" if close else "")
        ) from err


def check_kwargs(cls: type, kwargs: dict[str, Any], what: str, extra: tuple[str, ...] = ()) -> None:
    """Raise ``TypeError`` naming close matches if ``cls(**kwargs)`` would get an unknown keyword.

    ``extra`` names keywords accepted on top of the constructor's (``gymnasium.make``'s own).
    """
    params = inspect.signature(cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    allowed = [name for name in params if name not in ("self", "num_envs", "device")]
    allowed += list(extra)
    for key in kwargs:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=3)
            hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
            raise TypeError(
                f"{what} got an unknown keyword argument {key!r}; {hint}"
                f"accepted: {', '.join(allowed) or 'none'}"
            )


def make(
    env_id: str,
    num_envs: int = 1,
    device: str | torch.device = "cpu",
    graph_padding: dict[str, int] | None = None,
    **kwargs: Any,
) -> BatchedEnv:
    """Build a batched environment from a native id, a Gymnasium id or ``module:Class``.

    Args:
        env_id: ``"umbra/CartPole-v0"`` (native, see :func:`list_ids`), any registered Gymnasium id
            such as ``"CartPole-v1"``, or ``"package.module:Name"`` naming a
            :class:`~envs.core.BatchedEnv` subclass, a ``gymnasium.Env`` subclass, or any
            callable (class or factory, e.g. ``"mpe2.simple_spread_v3:parallel_env"``) that
            returns a PettingZoo ``ParallelEnv``, a PettingZoo ``AECEnv`` (a turn-based game,
            e.g. ``"pettingzoo.classic.tictactoe_v3:env"``) or a ``gymnasium.Env``, or
            ``"vmas:<scenario>"``
            naming a VMAS scenario (:class:`envs.interop.vmas.VmasToBatched`, which documents
            its keyword arguments; needs ``pip install -e ".[vmas]"``).
        num_envs: Number of copies.
        device: Where the tensors live. Third-party environments step on the CPU in numpy;
            their tensors are moved to ``device``.
        graph_padding: For third-party Gymnasium environments with ``gymnasium.spaces.Graph``
            observations: ``{"max_nodes": ..., "max_edges": ...}``, the sizes they are padded
            to (default 64 and 256; see :class:`envs.interop.gymnasium.GymnasiumToBatched`).
        **kwargs: Constructor arguments of the environment. A ``popgym/`` id also takes
            ``previous_action`` (bool, default False): True wraps it in
            :class:`envs.popgym.previous_action.PreviousAction`, whose observations carry the
            previous action as POPGym's baselines feed it.

    Returns:
        A :class:`~envs.core.BatchedEnv` (third-party environments come wrapped in
        :class:`envs.interop.gymnasium.GymnasiumToBatched` or, for PettingZoo,
        :class:`envs.interop.pettingzoo.PettingZooToBatched` or
        :class:`envs.interop.turn_based.AECToBatched`, and VMAS in
        :class:`envs.interop.vmas.VmasToBatched`: each a :class:`~envs.core.MultiAgentBatchedEnv`).

    Raises:
        ValueError: unknown id, with the closest known ids; ``num_envs < 1``; a device that this
            machine lacks (``"cuda"`` without CUDA).
        TypeError: unknown keyword argument, with the closest accepted ones; ``num_envs`` not an
            int.
    """
    if not isinstance(env_id, str):
        raise TypeError(f"env_id must be a string, got {env_id!r}")
    num_envs = check_num_envs(num_envs)
    resolve_device(device)  # fail early, before any third-party environment is built
    padding = _check_graph_padding(graph_padding)
    if env_id.startswith("vmas:"):
        from envs.interop.vmas import VMAS_PREFIX, VmasToBatched

        _no_padding(env_id, padding)
        return VmasToBatched(env_id[len(VMAS_PREFIX):], num_envs=num_envs, device=device, **kwargs)
    if env_id in _REGISTRY:
        native = _REGISTRY[env_id]
        cls = native.load()
        previous_action = False
        if env_id.startswith(POPGYM_NAMESPACE) and "previous_action" in kwargs:
            previous_action = kwargs.pop("previous_action")
            if not isinstance(previous_action, bool):
                raise TypeError(f"previous_action must be a bool, got {previous_action!r}")
        check_kwargs(cls, kwargs, env_id)
        _no_padding(env_id, padding)
        env = cls(num_envs=num_envs, device=device, **{**native.kwargs, **kwargs})
        if previous_action:
            from envs.popgym.previous_action import PreviousAction

            env = PreviousAction(env)
        return env
    from envs.interop.gymnasium import GymnasiumToBatched

    if ":" in env_id:
        target = load_entry_point(env_id)
        if isinstance(target, type) and issubclass(target, BatchedEnv):
            check_kwargs(target, kwargs, env_id)
            _no_padding(env_id, padding)
            return target(num_envs=num_envs, device=device, **kwargs)
        if isinstance(target, type) and issubclass(target, gym.Env):
            check_kwargs(target, kwargs, env_id)
            return GymnasiumToBatched(
                [functools.partial(target, **kwargs) for _ in range(num_envs)], device=device,
                **padding,
            )
        if callable(target):
            check_kwargs(target, kwargs, env_id)
            return _from_factory(
                env_id, functools.partial(target, **kwargs), num_envs, device, padding
            )
        raise TypeError(
            f"{env_id!r} is {target!r}: expected a subclass of envs.core.BatchedEnv or "
            "gymnasium.Env, or a callable returning a PettingZoo ParallelEnv or a gymnasium.Env"
        )
    if env_id in gym.registry:
        gym_spec = gym.registry[env_id]
        if gym_spec.entry_point is not None and not callable(gym_spec.entry_point):
            check_kwargs(
                load_entry_point(gym_spec.entry_point), kwargs, env_id, extra=_GYM_MAKE_KWARGS
            )
        return GymnasiumToBatched(
            [functools.partial(gym.make, env_id, **kwargs) for _ in range(num_envs)],
            device=device,
            **padding,
        )
    raise ValueError(_unknown_id_message(env_id))


def _check_graph_padding(graph_padding: Any) -> dict[str, int]:
    """``graph_padding`` as keyword arguments of ``GymnasiumToBatched``; unknown keys fail."""
    if graph_padding is None:
        return {}
    if not isinstance(graph_padding, dict):
        raise TypeError(
            f"graph_padding must be a dict such as {{'max_nodes': 64, 'max_edges': 256}}, got "
            f"{graph_padding!r}"
        )
    unknown = sorted(set(graph_padding) - {"max_nodes", "max_edges"})
    if unknown:
        raise TypeError(
            f"graph_padding got unknown keys {unknown}; accepted: 'max_nodes', 'max_edges'"
        )
    return dict(graph_padding)


def _no_padding(env_id: str, padding: dict[str, int]) -> None:
    if padding:
        raise TypeError(
            f"graph_padding is for third-party Gymnasium environments with gymnasium.spaces.Graph "
            f"observations; {env_id!r} is a batched environment, whose graph sizes are its own "
            "arguments (e.g. num_nodes)"
        )


def _from_factory(
    env_id: str,
    factory: Any,
    num_envs: int,
    device: str | torch.device,
    padding: dict[str, int] | None = None,
) -> BatchedEnv:
    """Batch the environments that ``factory()`` returns, recognised by their type (a PettingZoo
    AEC env, turn-based, goes to :class:`envs.interop.turn_based.AECToBatched`)."""
    from pettingzoo import AECEnv, ParallelEnv

    from envs.interop.gymnasium import GymnasiumToBatched
    from envs.interop.pettingzoo import PettingZooToBatched
    from envs.interop.turn_based import AECToBatched

    first = factory()
    fns = [lambda: first] + [factory] * (num_envs - 1)
    if isinstance(first, ParallelEnv):
        _no_padding(env_id, padding or {})
        return PettingZooToBatched(fns, device=device)
    if isinstance(first, AECEnv):
        _no_padding(env_id, padding or {})
        return AECToBatched(fns, device=device)
    if isinstance(first, gym.Env):
        return GymnasiumToBatched(fns, device=device, **(padding or {}))
    if hasattr(first, "close"):
        first.close()
    raise TypeError(
        f"{env_id!r} returned {type(first).__name__}: expected a subclass of "
        "envs.core.BatchedEnv or gymnasium.Env, or a callable returning a PettingZoo ParallelEnv "
        "or AECEnv, or a gymnasium.Env"
    )


def make_pettingzoo(env_id: str, parallel: bool = True, **kwargs: Any) -> Any:
    """One copy of a multi-agent environment as a PettingZoo ``ParallelEnv`` or AEC env.

    Args:
        env_id: A native multi-agent id (``envs.list_ids("multi-agent")``), or
            ``"package.module:Name"`` naming a :class:`~envs.core.MultiAgentBatchedEnv` subclass
            or a callable returning a PettingZoo ``ParallelEnv`` (returned as it is).
        parallel: ``True`` for a ``ParallelEnv``
            (:class:`envs.interop.pettingzoo.BatchedToParallelEnv`), ``False`` for an AEC env
            (PettingZoo's ``parallel_to_aec`` of it).
        **kwargs: Constructor arguments (``num_agents``, ``device``, ...); not ``num_envs``.

    Raises:
        TypeError: ``env_id`` is a single-agent environment; ``num_envs`` is given.
        ValueError: unknown id (see :func:`make`).
    """
    from pettingzoo.utils.conversions import parallel_to_aec

    from envs.interop.pettingzoo import BatchedToParallelEnv, PettingZooToBatched

    if "num_envs" in kwargs:
        raise TypeError(
            "make_pettingzoo builds one copy: drop num_envs (use envs.make for a batch)"
        )
    batched = make(env_id, num_envs=1, **kwargs)
    if isinstance(batched, PettingZooToBatched):
        par_env = batched.envs[0]
    elif batched.kind == "multi-agent":
        par_env = BatchedToParallelEnv(batched)
    else:
        batched.close()
        raise TypeError(
            f"{env_id!r} is a {batched.kind} environment, not a multi-agent one: use "
            f"gymnasium.make({env_id!r}) for a single gymnasium.Env"
        )
    return par_env if parallel else parallel_to_aec(par_env)


def _unknown_id_message(env_id: str) -> str:
    known = list(_REGISTRY) + [k for k in gym.registry if k not in _REGISTRY]
    close = difflib.get_close_matches(env_id, known, n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return (
        f"unknown environment id {env_id!r}.{hint} Native ids: {', '.join(list_ids())}; "
        "also accepted: any Gymnasium id or 'package.module:ClassName'."
    )
