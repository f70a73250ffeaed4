"""The project's container image every KFP component runs in (`infra/Dockerfile`): the
`RECSYS_IMAGE` setting, read when the components are defined (at pipeline compile time)."""
from recsys.core.settings import load_settings

PROJECT_IMAGE = load_settings().image
SPARK_IMAGE = load_settings().spark_image_tag
"""The project image plus Spark (`infra/Dockerfile.spark`): the spark-data step's image and
the default image of the SparkApplication it submits."""
