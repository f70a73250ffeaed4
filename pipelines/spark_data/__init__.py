"""The batch data path on Spark as one job: extract -> validate -> preprocess -> feature
tables, run in local mode inside a pipeline step or as a Kubeflow Spark Operator
`SparkApplication` on a cluster (docs/spark.md)."""
