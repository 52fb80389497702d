"""The spec: loading JSON, the schema, blocks and the graph."""
