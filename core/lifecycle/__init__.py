"""A model's life in MLflow: the promotion gate, registry aliases, the pyfunc loader."""
