"""Optional ecosystems are imported where they are used: making a Gymnasium or native env
imports neither stable-baselines3 nor PettingZoo (STYLE.md).

The checks run in fresh interpreters, since this one has imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OPTIONAL = ("stable_baselines3", "sb3_contrib", "pettingzoo")

#: Uses of envs that need no optional ecosystem, run one after the other in one interpreter.
GYMNASIUM_AND_NATIVE = [
    "import envs",
    "envs.make('CartPole-v1', num_envs=2)",
    "envs.make('umbra/CartPole-v0')",
    "envs.make('umbra/CooperativeNavigation-v0', num_agents=2)",
    "import gymnasium as gym; gym.make('umbra/CartPole-v0')",
    "gym.make_vec('umbra/CartPole-v0', num_envs=2, vectorization_mode='vector_entry_point')",
    "import envs.adapters, envs.interop.gymnasium, envs.interop.graph_padding",
]


def _imported_after(*steps: str) -> dict[str, list[str]]:
    """For each step, the optional ecosystems a fresh interpreter has imported once it ran."""
    lines = ["import json, sys", "seen = {}"]
    for step in steps:
        lines += [
            step,
            f"seen[{step!r}] = sorted({{m.split('.')[0] for m in sys.modules "
            f"if m.startswith({OPTIONAL!r})}})",
        ]
    lines.append("print(json.dumps(seen))")
    result = subprocess.run(
        [sys.executable, "-c", "\n".join(lines)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_gymnasium_and_native_envs_import_no_sb3_nor_pettingzoo():
    imported = _imported_after(*GYMNASIUM_AND_NATIVE)
    assert imported == {step: [] for step in GYMNASIUM_AND_NATIVE}


@pytest.mark.parametrize(
    "step, ecosystem",
    [
        ("import envs.interop.sb3", "stable_baselines3"),
        ("import envs.interop.pettingzoo", "pettingzoo"),
        ("import envs; envs.make_pettingzoo('umbra/Pursuit-v0')", "pettingzoo"),
    ],
)
def test_each_ecosystem_is_imported_by_its_own_module(step, ecosystem):
    assert _imported_after(step) == {step: [ecosystem]}


def test_the_old_module_still_gives_every_adapter():
    from envs import adapters
    from envs.interop import graph_padding, gymnasium, pettingzoo, sb3

    for module in (gymnasium, graph_padding, sb3, pettingzoo):
        for name in module.__all__:
            if not name.startswith("DEFAULT_"):
                assert getattr(adapters, name) is getattr(module, name)
    assert set(adapters.__all__) <= set(dir(adapters))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        adapters.Nope  # noqa: B018
