"""Development tooling, not shipped: local services for tests and benchmarks, the docs
generator, the container runner."""
