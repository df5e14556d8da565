"""A procedurally generated key-and-door maze, seen through a small window around the agent."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch

from envs.core import BatchedEnv, check_int

#: Moves of the four actions as (row, column) offsets: up, right, down, left.
MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))


def maze_edges(cells: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The edges of a ``cells x cells`` grid graph: endpoints ``u``, ``v`` as cell indices.

    Cell ``(i, j)`` has index ``i * cells + j``. Horizontal edges come first, then vertical ones;
    there are ``2 * cells * (cells - 1)`` in all.
    """
    index = torch.arange(cells * cells).reshape(cells, cells)
    u = torch.cat((index[:, :-1].reshape(-1), index[:-1, :].reshape(-1)))
    v = torch.cat((index[:, 1:].reshape(-1), index[1:, :].reshape(-1)))
    return u, v


def random_spanning_trees(
    count: int, u: torch.Tensor, v: torch.Tensor, num_nodes: int, generator: torch.Generator
) -> torch.Tensor:
    """``count`` random spanning trees of one connected graph, drawn in parallel on its device.

    Each tree is the minimum spanning tree under i.i.d. uniform edge weights (so the mazes are
    those of randomised Kruskal), found by Boruvka's algorithm: every round, each component adds
    its lightest outgoing edge, which at least halves the number of components, so
    ``ceil(log2(num_nodes))`` rounds always suffice. Components are merged by pointer jumping.
    The loops run a fixed number of times, so nothing waits on the device.

    Args:
        count: Number of trees.
        u, v: ``[E]`` int64 endpoints of the graph's edges, on the generator's device.
        num_nodes: Number of nodes; the graph must be connected.
        generator: Source of the edge weights.

    Returns:
        ``[count, E]`` bool: which edges each tree keeps (``num_nodes - 1`` of them per row).
    """
    device = u.device
    num_edges = u.numel()
    weights = torch.rand(count, num_edges, generator=generator, device=device)
    order = weights.argsort(dim=1)  # order[:, r] is the edge of rank r: ranks are distinct
    rank = torch.empty_like(order).scatter_(
        1, order, torch.arange(num_edges, device=device).expand(count, -1)
    )
    nodes = torch.arange(num_nodes, device=device).expand(count, -1)
    u_b, v_b = u.expand(count, -1), v.expand(count, -1)
    label = nodes.clone()  # label[n] = root node of n's component
    in_tree = torch.zeros(count, num_edges + 1, dtype=torch.bool, device=device)  # +1: a sink
    steps = max(1, math.ceil(math.log2(num_nodes)))
    for _ in range(steps):
        label_u, label_v = label.gather(1, u_b), label.gather(1, v_b)
        key = torch.where(label_u != label_v, rank, num_edges)  # num_edges: not outgoing
        best = torch.full((count, num_nodes), num_edges, dtype=torch.int64, device=device)
        best = best.scatter_reduce(1, label_u, key, "amin").scatter_reduce(1, label_v, key, "amin")
        has_edge = best < num_edges  # only component roots can have one
        edge = order.gather(1, best.clamp(max=num_edges - 1))
        in_tree.scatter_(1, torch.where(has_edge, edge, num_edges), True)
        end_u = label.gather(1, u_b.gather(1, edge))
        end_v = label.gather(1, v_b.gather(1, edge))
        other = torch.where(end_u == nodes, end_v, end_u)
        parent = torch.where(has_edge, other, nodes)
        # Two components that chose the same edge point at each other: the smaller one is root.
        mutual = (parent.gather(1, parent) == nodes) & (nodes < parent)
        parent = torch.where(mutual, nodes, parent)
        for _ in range(steps):
            parent = parent.gather(1, parent)
        label = parent.gather(1, label)
    return in_tree[:, :num_edges]


#: The eight symmetries of the square as 2x2 integer matrices acting on (row, column) offsets.
SYMMETRIES = tuple(
    ((a, 0), (0, b)) if swap == 0 else ((0, a), (b, 0))
    for swap in (0, 1)
    for a in (1, -1)
    for b in (1, -1)
)


class KeyDoorMaze(BatchedEnv):
    """Key-and-door maze: find the key, then the door, in a random maze seen through a window.

    Every episode takes a random perfect maze (one path between any two squares) of
    ``size x size`` squares with a wall all around: the squares at odd (row, column) are the
    maze's cells, and the walls between neighbouring cells are knocked down along a spanning tree
    drawn with uniform random edge weights (randomised Kruskal, computed batched on the
    environment's device by :func:`random_spanning_trees`). The agent, the key and the door sit on
    three distinct random cells. The agent sees only the ``view_size x view_size`` squares around
    itself, so it has to remember where it has been, where it saw the door while it looked for the
    key, and the way back.

    ## Action Space
    ``Discrete(4)``: move up (0), right (1), down (2), left (3); a move into a wall does nothing.

    ## Observation Space
    ``Box(0, 1, (3 * view_size**2 + 1,))`` float32: three ``view_size x view_size`` planes centred
    on the agent, row-major and flattened channel after channel -- walls (squares outside the maze
    count as walls), the key (until it is picked up) and the door -- followed by 1 if the agent
    holds the key and 0 otherwise. Reshape ``obs[..., :-1]`` to ``[3, view_size, view_size]`` for
    a convolutional encoder. :meth:`layout` gives the whole maze, for rendering and tests.

    ## Rewards
    ``key_reward`` when stepping onto the key (it is picked up); on stepping onto the door with the
    key, ``1 - 0.9 * steps / time_limit`` (MiniGrid's rule: faster is better), where ``steps``
    counts the steps of the episode, that one included. The door without the key is an ordinary
    square. Everything else gives 0.

    ## Starting State
    A random maze; agent, key and door on three distinct cells drawn uniformly.

    Mazes are generated in chunks rather than one per reset, to keep resets cheap: at the first
    reset ``refresh_every`` or more steps after the last, a chunk of ``max(16, num_envs // 16)``
    fresh mazes is generated, and a copy that starts an episode takes a uniformly drawn maze of
    the newest chunk, turned by one of the eight symmetries of the square drawn uniformly (which
    leaves the distribution of mazes unchanged). ``refresh_every`` is
    ``max(16, time_limit // 16)``; chunks are kept until no episode can still be using them.
    ``reset()`` starts from a freshly generated chunk, so the same seed gives the same mazes.

    ## Episode End
    Terminated on reaching the door with the key; truncated after ``time_limit`` steps.

    ## Arguments
    ``num_envs``, ``device``, ``debug`` (see :class:`~envs.core.BatchedEnv`) and

    - ``size`` (odd int >= 5, default 7): side of the maze in squares, outer walls included; the
      maze has ``((size - 1) / 2) ** 2`` cells;
    - ``view_size`` (odd int >= 1, default 5): side of the window around the agent;
    - ``time_limit`` (int >= 1, default ``5 * ((size - 1) / 2) ** 2``, i.e. 45, 125 and 245 for
      sizes 7, 11 and 15): steps per episode at most;
    - ``key_reward`` (float, default 0.1): reward for picking up the key.

    ``umbra/KeyDoorMazeEasy-v0``: size 7 (9 cells); ``Medium``: 11 (25 cells); ``Hard``: 15
    (49 cells).

    ## Version History
    - v0: first version.
    """

    description = "Find a key, then the door, in a random maze seen through a small window."

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        debug: bool = False,
        size: int = 7,
        view_size: int = 5,
        time_limit: int | None = None,
        key_reward: float = 0.1,
    ):
        self.size = check_int("size", size, 5)
        self.view_size = check_int("view_size", view_size, 1)
        for name, value in (("size", self.size), ("view_size", self.view_size)):
            if value % 2 == 0:
                raise ValueError(f"{name} must be odd, got {value}")
        self.cells = (self.size - 1) // 2
        if time_limit is None:
            time_limit = 5 * self.cells**2
        self.time_limit = check_int("time_limit", time_limit, 1)
        self.max_episode_steps = self.time_limit
        self.key_reward = float(key_reward)
        if not math.isfinite(self.key_reward):
            raise ValueError(f"key_reward must be a finite float, got {key_reward!r}")
        features = 3 * self.view_size**2 + 1
        self.single_observation_space = gym.spaces.Box(0.0, 1.0, (features,), np.float32)
        self.single_action_space = gym.spaces.Discrete(4)
        super().__init__(num_envs, device, debug)

        # Mazes are stored padded by view_size // 2 walls on every side and flattened, so that a
        # square is one int64 index, a move adds a constant and the window is a gather.
        self._pad = pad = self.view_size // 2
        self.padded = side = self.size + 2 * pad
        u, v = maze_edges(self.cells)
        self._u, self._v = u.to(self.device), v.to(self.device)
        cell = torch.arange(self.cells**2)
        cell_row, cell_col = 2 * (cell // self.cells) + 1 + pad, 2 * (cell % self.cells) + 1 + pad
        cell_square = cell_row * side + cell_col
        #: Padded flat index of each cell, and of the wall square between each edge's two cells.
        self._cell_square = cell_square.to(self.device)
        self._edge_square = ((cell_square[u] + cell_square[v]) // 2).to(self.device)

        # Per symmetry g: the flat offsets of the moves and of the window, and for each square of
        # the agent's frame the square of the stored maze that it shows.
        def flat(dr: torch.Tensor, dc: torch.Tensor, g: int) -> torch.Tensor:
            (a, b), (c, d) = SYMMETRIES[g]
            return (a * dr + b * dc) * side + (c * dr + d * dc)

        moves = torch.tensor(MOVES)
        offsets = torch.arange(self.view_size) - pad
        window_r = offsets.repeat_interleave(self.view_size)
        window_c = offsets.repeat(self.view_size)
        centre = side // 2
        frame_r = torch.arange(side).repeat_interleave(side) - centre
        frame_c = torch.arange(side).repeat(side) - centre
        self._moves = torch.stack([flat(moves[:, 0], moves[:, 1], g) for g in range(8)])
        self._window = torch.stack([flat(window_r, window_c, g) for g in range(8)])
        self._frame = torch.stack([flat(frame_r, frame_c, g) for g in range(8)])
        self._frame += centre * (side + 1)
        self._moves, self._window = self._moves.to(self.device), self._window.to(self.device)
        self._frame = self._frame.to(self.device)

        # The pool: a ring of chunks of mazes, the newest of which serves the resets.
        self.chunk_size = max(16, self.num_envs // 16)
        self.refresh_every = max(16, self.time_limit // 16)
        # A chunk serves resets for refresh_every steps or more, then its episodes last
        # time_limit at most; the next num_chunks - 1 chunks take at least
        # (num_chunks - 1) * refresh_every >= refresh_every + time_limit steps.
        self.num_chunks = 2 + math.ceil(self.time_limit / self.refresh_every)
        self._pool = torch.ones(
            self.num_chunks * self.chunk_size, side * side, dtype=torch.bool, device=self.device
        )
        self._newest = 0
        #: The ``step`` call (see BatchedEnv) at which the newest chunk was generated.
        self._refreshed_at = 0
        self._restart = True

        #: Per copy: the maze (row of the pool), its symmetry, and squares as padded flat indices
        #: of the stored maze.
        self.maze = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        self.symmetry = torch.zeros_like(self.maze)
        self.agent = torch.zeros_like(self.maze)
        self.key = torch.zeros_like(self.maze)
        self.door = torch.zeros_like(self.maze)
        self.has_key = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        self.steps = torch.zeros_like(self.maze)

    # ------------------------------------------------------------------ mazes
    def generate(self, count: int) -> torch.Tensor:
        """``count`` fresh random mazes as ``[count, padded**2]`` wall masks (True: wall)."""
        in_tree = random_spanning_trees(
            count, self._u, self._v, self.cells**2, generator=self.generator
        )
        walls = torch.ones(count, self.padded**2, dtype=torch.bool, device=self.device)
        walls[:, self._cell_square] = False
        walls[:, self._edge_square] = ~in_tree
        return walls

    def _refresh(self) -> None:
        self._refreshed_at = self._step_calls
        start = self._newest * self.chunk_size
        self._pool[start : start + self.chunk_size] = self.generate(self.chunk_size)

    def layout(self) -> dict[str, torch.Tensor]:
        """Every copy's maze as the agent's actions see it (action 0 moves up a row).

        Returns:
            ``walls``: ``[num_envs, size, size]`` bool, True where there is a wall; ``agent``,
            ``key``, ``door``: ``[num_envs, 2]`` int64 (row, column) in that grid; ``has_key``:
            ``[num_envs]`` bool.
        """
        side, pad = self.padded, self._pad
        frame = self._frame[self.symmetry]  # [N, side**2]: stored square shown at each square
        walls = self._pool.view(-1).gather(0, (self.maze[:, None] * side**2 + frame).view(-1))
        walls = walls.view(self.num_envs, side, side)[:, pad : side - pad, pad : side - pad]
        found = {}
        for name, square in (("agent", self.agent), ("key", self.key), ("door", self.door)):
            index = (frame == square[:, None]).to(torch.int64).argmax(dim=1)
            found[name] = torch.stack((index // side - pad, index % side - pad), dim=1)
        return {"walls": walls, **found, "has_key": self.has_key.clone()}

    # ------------------------------------------------------------------ the contract
    def reset(
        self, *, seed: int | None = None, options: dict | None = None
    ) -> tuple[torch.Tensor, dict]:
        self._restart = True  # generate the first chunk after the generator is seeded
        return super().reset(seed=seed, options=options)

    def _reset_copies(self, mask: torch.Tensor, options: dict | None = None) -> None:
        if self._restart:
            self._newest, self._restart = 0, False
            self._refresh()
        elif self._step_calls - self._refreshed_at >= self.refresh_every:
            self._newest = (self._newest + 1) % self.num_chunks
            self._refresh()
        n, g, device = self.num_envs, self.generator, self.device
        maze = self._newest * self.chunk_size + torch.randint(
            self.chunk_size, (n,), generator=g, device=device
        )
        symmetry = torch.randint(8, (n,), generator=g, device=device)
        # Three distinct cells: agent uniform, key uniform among the others, door among the rest.
        num_cells = self.cells**2
        agent = torch.randint(num_cells, (n,), generator=g, device=device)
        key = (agent + 1 + torch.randint(num_cells - 1, (n,), generator=g, device=device))
        key = key % num_cells
        door = torch.randint(num_cells - 2, (n,), generator=g, device=device)
        low, high = torch.minimum(agent, key), torch.maximum(agent, key)
        door = door + (door >= low).to(torch.int64)
        door = door + (door >= high).to(torch.int64)
        self.maze = torch.where(mask, maze, self.maze)
        self.symmetry = torch.where(mask, symmetry, self.symmetry)
        self.agent = torch.where(mask, self._cell_square[agent], self.agent)
        self.key = torch.where(mask, self._cell_square[key], self.key)
        self.door = torch.where(mask, self._cell_square[door], self.door)
        self.has_key = self.has_key & ~mask
        self.steps = torch.where(mask, 0, self.steps)

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        move = self._moves.view(-1)[self.symmetry * 4 + actions.to(torch.int64)]
        target = self.agent + move
        blocked = torch.take(self._pool, self.maze * self.padded**2 + target)
        self.agent = torch.where(blocked, self.agent, target)
        self.steps = self.steps + 1
        picked = ~self.has_key & (self.agent == self.key)
        self.has_key = self.has_key | picked
        success = self.has_key & (self.agent == self.door)
        bonus = 1.0 - 0.9 * self.steps.to(torch.float32) / self.time_limit
        reward = picked.to(torch.float32) * self.key_reward + torch.where(success, bonus, 0.0)
        return reward, success

    def _observe(self) -> torch.Tensor:
        window = torch.index_select(self._window, 0, self.symmetry).add_(self.agent[:, None])
        walls = torch.take(self._pool, (self.maze * self.padded**2)[:, None] + window)
        key = window == torch.where(self.has_key, -1, self.key)[:, None]  # -1: nowhere
        door = window == self.door[:, None]
        return torch.cat((walls, key, door, self.has_key[:, None]), dim=1).to(torch.float32)
