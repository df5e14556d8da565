"""Umbra environments: batched torch environments and their adapters (``envs.interop``).

>>> import envs
>>> env = envs.make("umbra/CartPole-v0", num_envs=4096, device="cpu")
>>> obs, info = env.reset(seed=0)

``envs.list_ids()`` lists the native ids; ``envs.make`` also accepts any Gymnasium id and
``"package.module:ClassName"`` (or ``"package.module:factory"`` returning a PettingZoo
``ParallelEnv``). Adding an environment: subclass :class:`envs.core.BatchedEnv` (or
:class:`envs.core.MultiAgentBatchedEnv`) in a family file (``envs/pomdp/...``), then add one
``register`` line below.

Multi-agent ids are PettingZoo environments too:

>>> parallel = envs.make_pettingzoo("umbra/CooperativeNavigation-v0", num_agents=3)
>>> observations, infos = parallel.reset(seed=0)
"""

from envs.core import BatchedEnv, MultiAgentBatchedEnv, resolve_device
from envs.registry import list_ids, make, make_pettingzoo, register, spec

__all__ = [
    "BatchedEnv",
    "MultiAgentBatchedEnv",
    "list_ids",
    "make",
    "make_pettingzoo",
    "register",
    "resolve_device",
    "spec",
]

register("umbra/CartPole-v0", "envs.classic:CartPole")
register("umbra/Pendulum-v0", "envs.classic:Pendulum")
register("umbra/MaskedCartPole-v0", "envs.pomdp.masked:MaskedCartPole")
register("umbra/MaskedPendulum-v0", "envs.pomdp.masked:MaskedPendulum")

# Memory tasks: Easy / Medium / Hard are the same class with other defaults.
_REPEAT, _TMAZE, _MAZE = "envs.pomdp.repeat:", "envs.pomdp.tmaze:", "envs.pomdp.maze:"
register("umbra/RepeatPreviousEasy-v0", _REPEAT + "RepeatPrevious", k=4, episode_length=52)
register("umbra/RepeatPreviousMedium-v0", _REPEAT + "RepeatPrevious", k=32, episode_length=104)
register("umbra/RepeatPreviousHard-v0", _REPEAT + "RepeatPrevious", k=64, episode_length=156)
register("umbra/RepeatFirstEasy-v0", _REPEAT + "RepeatFirst", episode_length=52)
register("umbra/RepeatFirstMedium-v0", _REPEAT + "RepeatFirst", episode_length=104)
register("umbra/RepeatFirstHard-v0", _REPEAT + "RepeatFirst", episode_length=156)
register("umbra/CountRecallEasy-v0", _REPEAT + "CountRecall", num_symbols=4, episode_length=32)
register("umbra/CountRecallMedium-v0", _REPEAT + "CountRecall", num_symbols=8, episode_length=64)
register("umbra/CountRecallHard-v0", _REPEAT + "CountRecall", num_symbols=16, episode_length=128)
register("umbra/TMazeEasy-v0", _TMAZE + "TMaze", length=5)
register("umbra/TMazeMedium-v0", _TMAZE + "TMaze", length=50)
register("umbra/TMazeHard-v0", _TMAZE + "TMaze", length=200)
register("umbra/KeyDoorMazeEasy-v0", _MAZE + "KeyDoorMaze", size=7)
register("umbra/KeyDoorMazeMedium-v0", _MAZE + "KeyDoorMaze", size=11)
register("umbra/KeyDoorMazeHard-v0", _MAZE + "KeyDoorMaze", size=15)

# Multi-agent tasks: PettingZoo environments too (envs.make_pettingzoo).
register("umbra/CooperativeNavigation-v0", "envs.multiagent.spread:CooperativeNavigation")
register("umbra/Pursuit-v0", "envs.multiagent.pursuit:Pursuit")
register("umbra/PrivateSum-v0", "envs.multiagent.private_info:PrivateSum")

# Graph tasks: padded graph observations with action masks over the nodes.
register("umbra/GraphNavigation-v0", "envs.graph.navigation:GraphNavigation")
register("umbra/MinVertexCover-v0", "envs.graph.cover:MinVertexCover")

import envs.popgym  # noqa: E402,F401  registers the popgym/ ids
