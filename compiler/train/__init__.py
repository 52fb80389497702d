"""Training: the fit loop on tf.distribute, resume, history, and serving exports."""
