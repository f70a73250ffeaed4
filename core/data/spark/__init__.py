"""The `spark` engine of the batch data path: a Spark session from the settings, and the
primitives that run the steps' own pandas definitions as Spark tasks (docs/spark.md)."""
