"""POPGym's partially observable tasks as batched torch environments (ids ``popgym/...``).

POPGym (Morad et al., "POPGym: Benchmarking Partially Observable Reinforcement Learning", ICLR
2023; the ``popgym`` package) has 16 families of memory tasks at three difficulties. Each family
here mirrors one ``popgym.envs`` class: the same observation and action spaces (an encoding that
differs is documented in the class docstring), the same parameters per difficulty, the same
rewards and episode ends (terminated vs truncated). Every copy is a tensor row: no Python loop
over copies, no host synchronisation per step. ``tests/envs/popgym/`` checks each family against
the package when it is installed (the ``test`` extra installs it).

One module per family; its ids are registered below with the parameters of popgym's
``<Family>Easy``, ``<Family>Medium`` and ``<Family>Hard`` classes. Umbra's older lookalikes
(``umbra/RepeatPrevious...``, ``umbra/RepeatFirst...``, ``umbra/CountRecall...``,
``umbra/MaskedCartPole-v0``, ``umbra/MaskedPendulum-v0``) are different tasks (their
docstrings say how); the ``popgym/`` ids are POPGym's.
"""

from envs.registry import register

__all__: list[str] = []

# ---- card games: Autoencode, CountRecall, HigherLower, RepeatFirst, RepeatPrevious

# ---- boards and bandits: Battleship, Concentration, MineSweeper, MultiarmedBandit

# ---- labyrinths: LabyrinthEscape, LabyrinthExplore

# ---- control: PositionOnly / NoisyPositionOnly / VelocityOnly CartPole, (Noisy)PositionOnlyPendulum
