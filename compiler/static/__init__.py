"""Static analysis: shapes, parameters, memory, the whole check (no TensorFlow)."""
