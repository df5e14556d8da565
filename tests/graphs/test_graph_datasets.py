"""Graph-learning data: generated tasks are what they claim, seeded and split."""

import torch
from torch_geometric.utils import to_dense_adj

from graphs.datasets import make_karate_task, make_motif_task, make_sbm_task


def assert_partition(*masks):
    total = torch.stack(masks).sum(0)
    assert torch.equal(total, torch.ones_like(total)), "splits must be disjoint and cover"


def test_sbm_task_is_seeded_and_split():
    data = make_sbm_task(num_blocks=3, block_size=20, seed=1)
    again = make_sbm_task(num_blocks=3, block_size=20, seed=1)
    other = make_sbm_task(num_blocks=3, block_size=20, seed=2)
    assert torch.equal(data.edge_index, again.edge_index) and torch.equal(data.x, again.x)
    assert not torch.equal(data.x, other.x)
    assert data.num_nodes == 60 and data.num_classes == 3
    assert_partition(data.train_mask, data.val_mask, data.test_mask)
    assert data.is_undirected()
    src, dst = data.edge_index
    assert (data.y[src] == data.y[dst]).float().mean() > 0.7  # assortative blocks


def test_karate_task():
    data = make_karate_task(seed=0)
    assert data.num_nodes == 34 and data.num_classes == 4
    assert_partition(data.train_mask, data.val_mask, data.test_mask)
    for label in range(4):  # stratified: every community is in training
        assert data.train_mask[data.y == label].any()


def test_motif_task_label_is_the_triangle_only():
    task = make_motif_task(num_graphs=40, seed=3)
    assert_partition(
        *[
            torch.zeros(40, dtype=torch.bool).index_fill_(0, idx, True)
            for idx in (task.train, task.val, task.test)
        ]
    )
    assert task.num_classes == 2 and task.num_features == 6
    for graph in task.graphs:
        adj = to_dense_adj(graph.edge_index, max_num_nodes=graph.num_nodes)[0]
        triangles = int(torch.trace(adj @ adj @ adj)) // 6
        assert triangles == int(graph.y)
        motif_degrees = sorted(adj.sum(1)[-5:].long().tolist())
        assert motif_degrees == [2, 2, 2, 3, 4]  # same in both classes (4: the link to the tree)


def test_features_alone_do_not_solve_the_sbm():
    data = make_sbm_task(seed=0)
    from_features = (data.x[:, :4].argmax(1) == data.y).float().mean()
    assert from_features < 0.7  # so the >0.9 of the trained GNNs comes from the graph
