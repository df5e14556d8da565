"""AgentCommunication: complete, k-nearest-neighbour and radius graphs of agent positions."""

import pytest
import torch

from graphs.communication import AgentCommunication, communication_graph, communication_options

# Four agents on a line: 0 at x=0, 1 at x=1, 2 at x=3, 3 at x=7.
LINE = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [7.0, 0.0]])


def edge_set(edge_index, edge_mask):
    return {(int(s), int(d)) for (s, d), keep in zip(edge_index.T, edge_mask, strict=True) if keep}


def test_knn_graph_of_known_positions_has_exactly_the_nearest_sources():
    edge_index, edge_mask = communication_graph(LINE, "knn", k=1)
    # Each target hears its nearest other agent: 0 <- 1, 1 <- 0, 2 <- 1, 3 <- 2.
    assert edge_set(edge_index, edge_mask) == {(1, 0), (0, 1), (1, 2), (2, 3)}
    edge_index, edge_mask = communication_graph(LINE, "knn", k=2)
    assert edge_index.shape == (2, 8) and bool(edge_mask.all())
    assert edge_set(edge_index, edge_mask) == {
        (1, 0), (2, 0), (0, 1), (2, 1), (1, 2), (0, 2), (2, 3), (1, 3)
    }


def test_radius_graph_keeps_exactly_the_pairs_in_range_and_masks_the_rest():
    edge_index, edge_mask = communication_graph(LINE, "radius", radius=2.0)
    assert edge_index.shape == (2, 12) and edge_mask.shape == (12,)  # every ordered pair
    assert edge_set(edge_index, edge_mask) == {(0, 1), (1, 0), (1, 2), (2, 1)}
    assert not any(s == d for s, d in edge_index.T.tolist()), "no self-edges"
    _, nothing = communication_graph(LINE, "radius", radius=0.5)
    assert not nothing.any()


def test_graphs_are_built_per_copy_and_step_without_loops():
    positions = torch.stack((LINE, LINE.flip(0))).expand(3, 2, 4, 2)  # [T, copies, A, 2]
    edge_index, edge_mask = communication_graph(positions, "knn", k=1)
    assert edge_index.shape == (3, 2, 2, 4)
    assert edge_set(edge_index[1, 0], edge_mask[1, 0]) == {(1, 0), (0, 1), (1, 2), (2, 3)}
    # Copy 1 lists the same agents in reverse order.
    assert edge_set(edge_index[2, 1], edge_mask[2, 1]) == {(2, 3), (3, 2), (2, 1), (1, 0)}


def test_messages_follow_the_knn_graph_only():
    comm = AgentCommunication(hidden_size=8, num_agents=4, graph="knn", k=1,
                              position_slice=(0, 2))
    obs = torch.cat((LINE, torch.eye(4)), dim=1).repeat(2, 1)[None]  # [1, 2 copies x 4, 6]
    x = torch.randn(1, 8, 8)
    changed = x.clone()
    changed[:, 3] += 1.0  # copy 0, agent 3: nobody's nearest neighbour
    delta = (comm(changed, obs) - comm(x, obs)).abs().sum(-1)[0]
    assert delta[3] > 0 and (delta[:3] == 0).all(), "agent 3 speaks to nobody"
    assert (delta[4:] == 0).all(), "copy 1 hears nothing from copy 0"
    changed = x.clone()
    changed[:, 2] += 1.0  # agent 2 is agent 3's nearest: 3 hears it
    delta = (comm(changed, obs) - comm(x, obs)).abs().sum(-1)[0]
    assert delta[3] > 0 and delta[0] == 0


def test_radius_messages_skip_agents_out_of_range():
    comm = AgentCommunication(hidden_size=8, num_agents=4, num_layers=1, graph="radius",
                              radius=2.0, position_slice=(0, 2))
    obs = LINE[None]  # [1, 1 copy x 4 agents, 2]
    x = torch.randn(1, 4, 8)
    changed = x.clone()
    changed[:, 0] += 1.0
    delta = (comm(changed, obs) - comm(x, obs)).abs().sum(-1)[0]
    assert delta[1] > 0 and delta[2] == 0 and delta[3] == 0, "one hop: only agent 1 hears 0"


def test_options_are_checked_with_clear_errors():
    assert communication_options("gat") == {"model": "gat", "graph": "complete"}
    with pytest.raises(ValueError, match="did you mean 'radius'"):
        communication_options({"graph": "radius", "radus": 1.0})
    with pytest.raises(ValueError, match="needs an int k"):
        communication_options({"graph": "knn"})
    with pytest.raises(ValueError, match="finite radius"):
        communication_options({"graph": "radius", "radius": -1})
    with pytest.raises(ValueError, match="did you mean 'knn'"):
        communication_options({"graph": "kn", "k": 1})
    with pytest.raises(ValueError, match="position_slice must be"):
        communication_options({"graph": "knn", "k": 1, "position_slice": [0]})
    with pytest.raises(ValueError, match="position_slice"):
        AgentCommunication(8, 3, graph="knn", k=1)  # no position source
    with pytest.raises(ValueError, match="k <= num_agents - 1 = 2"):
        AgentCommunication(8, 3, graph="knn", k=3, position_slice=(0, 2))
    comm = AgentCommunication(8, 2, graph="radius", radius=1.0, position_slice=(5, 7))
    with pytest.raises(ValueError, match="selects nothing"):
        comm(torch.zeros(1, 2, 8), torch.zeros(1, 2, 4))
