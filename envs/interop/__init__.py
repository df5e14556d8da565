"""Umbra's batched environments and other ecosystems, both ways: one module per ecosystem.

- :mod:`envs.interop.gymnasium`: :class:`~envs.interop.gymnasium.BatchedToGymEnv` (one copy as a
  ``gymnasium.Env``), :class:`~envs.interop.gymnasium.BatchedToNumpyVecEnv` (the batch as a numpy
  ``VectorEnv``) and :class:`~envs.interop.gymnasium.GymnasiumToBatched` (any ``gymnasium.Env``
  as a batched environment);
- :mod:`envs.interop.graph_padding`: :class:`~envs.interop.graph_padding.GraphPadding`,
  ``gymnasium.spaces.Graph`` observations in the padded graph form;
- :mod:`envs.interop.sb3`: :class:`~envs.interop.sb3.BatchedToSB3VecEnv` (the batch as a
  stable-baselines3 ``VecEnv``);
- :mod:`envs.interop.pettingzoo`: :class:`~envs.interop.pettingzoo.BatchedToParallelEnv` (one
  copy of a multi-agent env as a PettingZoo ``ParallelEnv``) and
  :class:`~envs.interop.pettingzoo.PettingZooToBatched` (any ``ParallelEnv`` as a multi-agent
  batched environment);
- :mod:`envs.interop.turn_based`: :class:`~envs.interop.turn_based.AECToBatched` (any turn-based
  PettingZoo ``AECEnv``, e.g. the classic board games, as a multi-agent batched environment);
- :mod:`envs.interop.vmas`: :class:`~envs.interop.vmas.VmasToBatched` (a VMAS scenario,
  ``envs.make("vmas:<scenario>")``, as a multi-agent batched environment on the same device).

Each module imports its ecosystem, and only its own: importing ``envs`` (or making a Gymnasium
environment) imports neither stable-baselines3 nor PettingZoo. Import the adapters from their
module::

    from envs.interop.sb3 import BatchedToSB3VecEnv
"""
