"""`recsys pipeline schedule`: compiles, then refuses an unreachable Kubeflow API clearly."""
import yaml

from recsys.cli.main import main
from tests.conftest import free_port


def test_schedule_compiles_then_names_the_unreachable_api(tmp_path, caplog):
    host = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    code = main(["pipeline", "schedule", "--host", host, "--source", "s3://shop/events",
                 "--lake-uri", "s3://lake/shop", "--tracking-uri", "http://mlflow:5000",
                 "--out", str(tmp_path)])
    assert code == 2
    assert f"cannot reach the Kubeflow Pipelines API at {host}" in caplog.text
    runs = yaml.safe_load((tmp_path / "recurring_runs.yaml").read_text())
    assert [r["name"] for r in runs] == ["recsys-daily-monitoring",
                                         "recsys-daily-incremental-retrain",
                                         "recsys-weekly-full-retrain"]


def test_a_malformed_parameter_is_refused(tmp_path, caplog):
    code = main(["pipeline", "schedule", "--host", "http://127.0.0.1:9", "--source", "s3://a/b",
                 "--lake-uri", "s3://l", "--tracking-uri", "http://m", "--param", "oops",
                 "--out", str(tmp_path)])
    assert code == 2 and "--param expects KEY=VALUE, got 'oops'" in caplog.text
