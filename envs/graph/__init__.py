"""Graph-structured tasks: observations in the padded graph form.

The form is described in docs/architecture.md, "Graph observations".

- ``random_graphs.py``: random connected graphs drawn batched on the environment's device, and
  the padded observation spaces they share;
- ``navigation.py``: find a goal node on a random graph seeing only the agent's neighbourhood
  (a POMDP on a graph);
- ``cover.py``: minimum vertex cover, a combinatorial node-selection task.

Every observation is a dict with ``x`` ``[N_max, F]`` float32, ``edge_index`` ``[2, E_max]`` int64,
``node_mask`` ``[N_max]`` and ``edge_mask`` ``[E_max]`` (int8, 1 = present), plus the key
``action_mask`` ``[N_max]`` int8; the environments' ``action_masks()`` give the same mask as a bool
tensor for sb3-contrib's MaskablePPO.
"""
