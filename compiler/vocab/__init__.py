"""The vocabulary: one rule per layer, merge, loss and metric."""
