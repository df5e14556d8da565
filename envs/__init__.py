"""Umbra environments: batched torch environments and their adapters.

>>> import envs
>>> env = envs.make("umbra/CartPole-v0", num_envs=4096, device="cpu")
>>> obs, info = env.reset(seed=0)

``envs.list_ids()`` lists the native ids; ``envs.make`` also accepts any Gymnasium id and
``"package.module:ClassName"``. Adding an environment: subclass :class:`envs.core.BatchedEnv` in a
family file (``envs/pomdp/...``), then add one ``register`` line below.
"""

from envs.core import BatchedEnv, resolve_device
from envs.registry import list_ids, make, register, spec

__all__ = ["BatchedEnv", "list_ids", "make", "register", "resolve_device", "spec"]

register("umbra/CartPole-v0", "envs.classic:CartPole")
register("umbra/Pendulum-v0", "envs.classic:Pendulum")
register("umbra/MaskedCartPole-v0", "envs.pomdp.masked:MaskedCartPole")
register("umbra/MaskedPendulum-v0", "envs.pomdp.masked:MaskedPendulum")
