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
