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

Every class names the popgym class it mirrors in a class attribute, ``popgym_class =
"popgym.envs.<module>:<Family>"`` (the family's base class, without difficulty). popgym defines
``<Family>Easy``, ``<Family>Medium`` and ``<Family>Hard`` beside it, so :func:`package_class`
maps an id ``popgym/<Family><Difficulty>-v0`` to ``"popgym.envs.<module>:<Family><Difficulty>"``
(``benchmarks.env_speed --popgym`` builds its comparison table from it, and skips, with a note,
an id whose class lacks the attribute).

**Previous action.** POPGym's baselines feed the policy the previous action as well (popgym's
``PreviousAction`` wrapper). Every ``popgym/`` id takes ``previous_action=True`` in
``envs.make`` (so ``--env-kwargs '{"previous_action": true}'`` and a suite's trial kwargs reach
it; ``gymnasium.make`` too): the environment comes wrapped in
:class:`envs.popgym.previous_action.PreviousAction`, whose observation is the Dict ``{"obs":
<the observation>, "previous_action": <the action>}``, with popgym's null action (0, or the
lowest action) at the start of every episode, autoresets included. ``envs.make`` handles the
keyword for the ``popgym/`` namespace (``envs.registry.POPGYM_NAMESPACE``); the ids and their
versions are unchanged, and the default (and the popgym suite, unless its trials set
``previous_action``) is the plain observation.
"""

from envs.registry import register, spec

__all__: list[str] = ["package_class"]

DIFFICULTIES = ("Easy", "Medium", "Hard")


def package_class(env_id: str) -> str | None:
    """The popgym class that ``env_id`` (``popgym/<Family><Difficulty>-v0``) mirrors, as
    ``"module:Class"``; ``None`` when its class has no ``popgym_class`` attribute.

    >>> package_class("popgym/PositionOnlyCartPoleHard-v0")
    'popgym.envs.position_only_cartpole:PositionOnlyCartPoleHard'
    """
    base = getattr(spec(env_id).load(), "popgym_class", None)
    if base is None:
        return None
    name = env_id.split("/", 1)[1].rsplit("-v", 1)[0]
    difficulty = next((d for d in DIFFICULTIES if name.endswith(d)), None)
    if difficulty is None:
        raise ValueError(f"{env_id!r} does not end in one of {DIFFICULTIES} before its version")
    return base + difficulty


# ---- card games: Autoencode, CountRecall, HigherLower, RepeatFirst, RepeatPrevious
_CARDS = "envs.popgym."
register("popgym/AutoencodeEasy-v0", _CARDS + "autoencode:Autoencode", num_decks=1)
register("popgym/AutoencodeMedium-v0", _CARDS + "autoencode:Autoencode", num_decks=2)
register("popgym/AutoencodeHard-v0", _CARDS + "autoencode:Autoencode", num_decks=3)
register("popgym/CountRecallEasy-v0", _CARDS + "count_recall:CountRecall", num_decks=1,
         deck_type="colors")
register("popgym/CountRecallMedium-v0", _CARDS + "count_recall:CountRecall", num_decks=2,
         deck_type="suits")
register("popgym/CountRecallHard-v0", _CARDS + "count_recall:CountRecall", num_decks=4,
         deck_type="ranks")
register("popgym/HigherLowerEasy-v0", _CARDS + "higher_lower:HigherLower", num_decks=1)
register("popgym/HigherLowerMedium-v0", _CARDS + "higher_lower:HigherLower", num_decks=2)
register("popgym/HigherLowerHard-v0", _CARDS + "higher_lower:HigherLower", num_decks=3)
register("popgym/RepeatFirstEasy-v0", _CARDS + "repeat_first:RepeatFirst", num_decks=1)
register("popgym/RepeatFirstMedium-v0", _CARDS + "repeat_first:RepeatFirst", num_decks=8)
register("popgym/RepeatFirstHard-v0", _CARDS + "repeat_first:RepeatFirst", num_decks=16)
register("popgym/RepeatPreviousEasy-v0", _CARDS + "repeat_previous:RepeatPrevious", num_decks=1,
         k=4)
register("popgym/RepeatPreviousMedium-v0", _CARDS + "repeat_previous:RepeatPrevious",
         num_decks=2, k=32)
register("popgym/RepeatPreviousHard-v0", _CARDS + "repeat_previous:RepeatPrevious", num_decks=3,
         k=64)

# ---- boards and bandits: Battleship, Concentration, MineSweeper, MultiarmedBandit
_BATTLESHIP = "envs.popgym.battleship:Battleship"
_CONCENTRATION = "envs.popgym.concentration:Concentration"
_MINESWEEPER = "envs.popgym.minesweeper:MineSweeper"
_BANDIT = "envs.popgym.multiarmed_bandit:MultiarmedBandit"
register("popgym/BattleshipEasy-v0", _BATTLESHIP, board_size=8, ship_sizes=(2, 3, 3, 4))
register("popgym/BattleshipMedium-v0", _BATTLESHIP, board_size=10, ship_sizes=(2, 3, 3, 4))
register("popgym/BattleshipHard-v0", _BATTLESHIP, board_size=12, ship_sizes=(2, 3, 3, 4))
register("popgym/ConcentrationEasy-v0", _CONCENTRATION, num_decks=1, deck_type="colors")
register("popgym/ConcentrationMedium-v0", _CONCENTRATION, num_decks=2, deck_type="colors")
register("popgym/ConcentrationHard-v0", _CONCENTRATION, num_decks=1, deck_type="ranks")
register("popgym/MineSweeperEasy-v0", _MINESWEEPER, rows=4, columns=4, num_mines=2)
register("popgym/MineSweeperMedium-v0", _MINESWEEPER, rows=6, columns=6, num_mines=6)
register("popgym/MineSweeperHard-v0", _MINESWEEPER, rows=8, columns=8, num_mines=10)
register("popgym/MultiarmedBanditEasy-v0", _BANDIT, num_bandits=10, episode_length=200)
register("popgym/MultiarmedBanditMedium-v0", _BANDIT, num_bandits=20, episode_length=400)
register("popgym/MultiarmedBanditHard-v0", _BANDIT, num_bandits=30, episode_length=600)

# ---- labyrinths: LabyrinthEscape, LabyrinthExplore
_ESCAPE = "envs.popgym.labyrinth_escape:LabyrinthEscape"
_EXPLORE = "envs.popgym.labyrinth_explore:LabyrinthExplore"
register("popgym/LabyrinthEscapeEasy-v0", _ESCAPE, maze_dims=(10, 10), episode_length=1024)
register("popgym/LabyrinthEscapeMedium-v0", _ESCAPE, maze_dims=(14, 14), episode_length=1024)
register("popgym/LabyrinthEscapeHard-v0", _ESCAPE, maze_dims=(18, 18), episode_length=1024)
register("popgym/LabyrinthExploreEasy-v0", _EXPLORE, maze_dims=(10, 10), episode_length=1024)
register("popgym/LabyrinthExploreMedium-v0", _EXPLORE, maze_dims=(14, 14), episode_length=1024)
register("popgym/LabyrinthExploreHard-v0", _EXPLORE, maze_dims=(18, 18), episode_length=1024)

# ---- control: (Noisy)PositionOnly / VelocityOnly CartPole, (Noisy)PositionOnlyPendulum
_POS_CARTPOLE = "envs.popgym.position_only_cartpole:PositionOnlyCartPole"
_NOISY_CARTPOLE = "envs.popgym.noisy_position_only_cartpole:NoisyPositionOnlyCartPole"
_VEL_CARTPOLE = "envs.popgym.velocity_only_cartpole:VelocityOnlyCartPole"
_POS_PENDULUM = "envs.popgym.position_only_pendulum:PositionOnlyPendulum"
_NOISY_PENDULUM = "envs.popgym.noisy_position_only_pendulum:NoisyPositionOnlyPendulum"
register("popgym/PositionOnlyCartPoleEasy-v0", _POS_CARTPOLE, max_episode_length=200)
register("popgym/PositionOnlyCartPoleMedium-v0", _POS_CARTPOLE, max_episode_length=400)
register("popgym/PositionOnlyCartPoleHard-v0", _POS_CARTPOLE, max_episode_length=600)
register("popgym/NoisyPositionOnlyCartPoleEasy-v0", _NOISY_CARTPOLE, noise_sigma=0.1)
register("popgym/NoisyPositionOnlyCartPoleMedium-v0", _NOISY_CARTPOLE, noise_sigma=0.2)
register("popgym/NoisyPositionOnlyCartPoleHard-v0", _NOISY_CARTPOLE, noise_sigma=0.3)
register("popgym/VelocityOnlyCartPoleEasy-v0", _VEL_CARTPOLE, max_episode_length=200)
register("popgym/VelocityOnlyCartPoleMedium-v0", _VEL_CARTPOLE, max_episode_length=400)
register("popgym/VelocityOnlyCartPoleHard-v0", _VEL_CARTPOLE, max_episode_length=600)
register("popgym/PositionOnlyPendulumEasy-v0", _POS_PENDULUM, max_episode_length=200)
register("popgym/PositionOnlyPendulumMedium-v0", _POS_PENDULUM, max_episode_length=150)
register("popgym/PositionOnlyPendulumHard-v0", _POS_PENDULUM, max_episode_length=100)
register("popgym/NoisyPositionOnlyPendulumEasy-v0", _NOISY_PENDULUM, noise_sigma=0.1)
register("popgym/NoisyPositionOnlyPendulumMedium-v0", _NOISY_PENDULUM, noise_sigma=0.2)
register("popgym/NoisyPositionOnlyPendulumHard-v0", _NOISY_PENDULUM, noise_sigma=0.3)
