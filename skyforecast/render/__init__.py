"""What `predict` renders after the model: the sky mask, the steady field and its renderer."""
