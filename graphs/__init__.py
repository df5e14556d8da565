"""Graph learning with PyTorch Geometric: padded graph batches, GNN encoders, graph tasks."""
