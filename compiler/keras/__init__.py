"""The Keras side: building the model, fusec's own layers, saving artifacts."""
