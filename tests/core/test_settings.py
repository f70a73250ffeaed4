import pytest

from recsys.core.settings import Settings


def test_redis_url_from_either_variable(monkeypatch):
    monkeypatch.delenv("RECSYS_REDIS_URL", raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://cache:6380/1")
    assert Settings().redis_url == "redis://cache:6380/1"
    monkeypatch.setenv("RECSYS_REDIS_URL", "redis://other:6379/2")
    assert Settings().redis_url == "redis://other:6379/2"
    assert Settings(redis_url="redis://x:1/0").redis_url == "redis://x:1/0"


def test_defaults_live_under_the_state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_STATE_DIR", str(tmp_path))
    settings = Settings()
    assert settings.lake == str(tmp_path / "lake")
    assert settings.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert settings.feast_profile == "local"


@pytest.mark.parametrize("image, spark_image", [
    ("localhost/recsys:0.2.0", "localhost/recsys-spark:0.2.0"),
    ("registry.example:5000/shop/recsys:2.0", "registry.example:5000/shop/recsys-spark:2.0"),
    ("registry.example:5000/recsys", "registry.example:5000/recsys-spark:latest"),
    ("recsys", "recsys-spark:latest")])
def test_the_spark_image_is_named_after_the_project_image(image, spark_image):
    assert Settings(image=image).spark_image_tag == spark_image
    assert Settings(image=image, spark_image="other/spark:1").spark_image_tag == "other/spark:1"
