"""Classic control with the velocities hidden: the textbook POMDPs."""

from __future__ import annotations

from envs.classic import CartPole, Pendulum


class MaskedCartPole(CartPole):
    """CartPole with the velocities hidden: the agent sees cart position and pole angle only.

    Everything but the observation is :class:`envs.classic.CartPole` (Gymnasium ``CartPole-v1``).
    A feed-forward policy cannot tell which way the pole is falling from one observation; a policy
    with memory (or frame differences) can.

    ## Action Space
    ``Discrete(2)``: push the cart left (0) or right (1).

    ## Observation Space
    ``Box(2,)`` float32: cart position in [-4.8, 4.8], pole angle in [-0.418, 0.418] rad.

    ## Rewards
    +1 for every step.

    ## Episode End
    The pole leaves +-12 degrees or the cart leaves +-2.4 (terminated); 500 steps (truncated).

    ## Compared with POPGym
    ``popgym/PositionOnlyCartPole{Easy,Medium,Hard}-v0``
    (:class:`envs.popgym.position_only_cartpole.PositionOnlyCartPole`, a subclass of this one)
    show the same observation, but follow popgym: a reward of ``1 / L`` per step rather than +1,
    and truncation after ``L`` = 200, 400 or 600 steps rather than 500 (an episode returns at
    most 1 there, 500 here).

    ## Version History
    - v0: first version.
    """

    description = "CartPole with velocities hidden (position and angle only): needs memory."
    observed = (0, 2)


class MaskedPendulum(Pendulum):
    """Pendulum with the angular velocity hidden: the agent sees ``cos(theta)``, ``sin(theta)``.

    Everything but the observation is :class:`envs.classic.Pendulum` (Gymnasium ``Pendulum-v1``).

    ## Action Space
    ``Box(-2, 2, (1,))`` float32: torque.

    ## Observation Space
    ``Box(2,)`` float32: ``cos(theta)``, ``sin(theta)``.

    ## Rewards
    ``-(theta^2 + 0.1 * theta_dot^2 + 0.001 * torque^2)``.

    ## Episode End
    Truncated after 200 steps; never terminates.

    ## Compared with POPGym
    ``popgym/PositionOnlyPendulum{Easy,Medium,Hard}-v0``
    (:class:`envs.popgym.position_only_pendulum.PositionOnlyPendulum`, a subclass of this one)
    show the same observation, but follow popgym: the reward above mapped onto [-1, 1] and
    divided by the episode length, ``(r / 8.1368022 + 1) / L``, and truncation after ``L`` =
    200, 150 or 100 steps (an episode returns within [-1, 1] there, within [-3255, 0] here).

    ## Version History
    - v0: first version.
    """

    description = "Pendulum with angular velocity hidden (angle only): needs memory."
    observed = (0, 1)
