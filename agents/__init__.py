"""Learning: one PPO loop, composed policies, memory cores, SB3 interop."""
