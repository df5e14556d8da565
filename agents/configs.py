"""The frozen config dataclasses' common base: type checks, ``to_dict`` and ``from_dict``.

:class:`Config` is the base of :class:`~agents.ppo.PPOConfig`, :class:`~agents.sb3.SB3Config`
and :class:`~graphs.tasks.GraphTaskConfig`: ``to_dict`` / ``from_dict`` round-trip through JSON
and TOML, an unknown key names the close fields, and :func:`check_field_types` checks every
field against its annotation before the config's own cross-field checks.

:class:`~agents.ppo.PPOConfig`, :class:`~agents.sb3.SB3Config` and
:class:`~graphs.tasks.GraphTaskConfig` call :func:`check_field_types` first thing in their
``__post_init__``, so a value of the wrong type (from Python, a suite's ``config`` table or
``--set KEY=VALUE``) is an error naming the field and the expected type instead of a failure
deep inside a comparison::

    PPOConfig.learning_rate must be a float, got 'fast' (str)

An int is accepted where a float is expected and stored as a float (TOML and JSON write ``1e-3``
and ``1`` alike); a bool is never an int.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import numbers
import types
import typing
from typing import Any


class Config:
    """Base of the frozen config dataclasses (it has no fields of its own).

    Subclasses are ``@dataclass(frozen=True)`` and call ``super().__post_init__()`` first in
    their own ``__post_init__`` (the type checks), then check what spans fields.
    """

    def __post_init__(self) -> None:
        check_field_types(self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON/TOML-serialisable dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """Inverse of :meth:`to_dict`; an unknown key is a ``ValueError`` naming close fields."""
        check_known_fields(cls, data)
        return cls(**data)


def check_known_fields(cls: type, keys: Any, where: str = "") -> None:
    """``ValueError`` for the first of ``keys`` that is no field of the dataclass ``cls``,
    naming the close ones (or every field when none is close); ``where`` says where the key came
    from, e.g. ``"(--set x=1)"``."""
    names = [f.name for f in dataclasses.fields(cls)]
    for key in keys:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=3)
            hint = (f"did you mean {', '.join(repr(c) for c in close)}?" if close
                    else f"known fields: {', '.join(names)}")
            place = f" {where}" if where else ""
            raise ValueError(f"unknown {cls.__name__} field {key!r}{place}; {hint}")


def check_field_types(config: Any) -> None:
    """Check every field of the dataclass instance ``config`` against its annotation.

    Ints given for float fields are converted to floats in place (the config may be frozen).

    Args:
        config: A dataclass instance whose annotations are types: ``int``, ``float``, ``bool``,
            ``str``, ``dict[...]``, ``list[...]``, ``tuple[...]``, ``Literal[...]``, ``Any``
            and unions of them (``float | None``).

    Raises:
        ValueError: a field holds a value of another type, naming the field, the expected type
            and the value with its type.
    """
    hints = _type_hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        expected = hints[field.name]
        if not _matches(value, expected):
            raise ValueError(f"{type(config).__name__}.{field.name} must be "
                             f"{describe_type(expected)}, got {value!r} ({type(value).__name__})")
        if (isinstance(value, numbers.Integral) and not isinstance(value, bool)
                and not _matches(value, expected, int_as_float=False)):
            object.__setattr__(config, field.name, float(value))  # an int where a float goes


def describe_type(annotation: Any) -> str:
    """``float | None`` -> ``"a float or None"``: an annotation in words, for error messages."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = typing.get_args(annotation)
        words = [describe_type(m) for m in members if m is not type(None)]
        if type(None) in members:
            words.append("None")
        return " or ".join(words) if len(words) < 3 else f"{', '.join(words[:-1])} or {words[-1]}"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(annotation))
    base = origin or annotation
    names = {int: "an int", float: "a float", bool: "a bool (true or false)", str: "a string",
             dict: "a table (dict)", list: "a list", tuple: "a list", type(None): "None"}
    if annotation is Any:
        return "any value"
    return names.get(base, f"a {getattr(base, '__name__', base)}")


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _matches(value: Any, annotation: Any, int_as_float: bool = True) -> bool:
    """Whether ``value`` is of type ``annotation`` (containers: the outer type only)."""
    if annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, m, int_as_float) for m in typing.get_args(annotation))
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if annotation is type(None) or annotation is None:
        return value is None
    base = origin or annotation
    if base is bool:
        return isinstance(value, bool)
    if base is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if base is float:
        kinds = numbers.Real if int_as_float else float
        return isinstance(value, kinds) and not isinstance(value, bool)
    if base in (list, tuple):
        return isinstance(value, (list, tuple))
    if isinstance(base, type):
        return isinstance(value, base)
    return True  # an annotation this checker does not know: not its business
