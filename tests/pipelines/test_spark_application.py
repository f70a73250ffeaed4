"""The SparkApplication the spark-data step submits: it validates against the operator's
v1beta2 fields, and submit/wait/fail runs against a Kubernetes API server started here (a
real HTTP server answering the CRD and pod-log endpoints, validating what it is sent)."""
import json
from http.server import BaseHTTPRequestHandler

import jsonschema
import pytest
import yaml

from recsys.pipelines.spark_data.application import (
    GROUP,
    PLURAL,
    VERSION,
    SparkApplicationFailed,
    SparkClusterConfig,
    application_name,
    spark_application,
    submit_and_wait,
)
from recsys.pipelines.spark_data.job import SparkDataJob
from tests.conftest import REPO
from tests.kubernetes_api import ServedApi, served_apis

SCHEMA = json.loads((REPO / "tests" / "fixtures" / "sparkapplication-v1beta2.schema.json")
                    .read_text())
EXAMPLE = REPO / "infra" / "k8s" / "spark" / "sparkapplication.example.yaml"
JOB = SparkDataJob(source="s3://shop-exports/events/2026-12-03/", lake_uri="s3://recsys-lake/shop",
                   result_key="jobs/spark_data/example.json", start="2026-11-03",
                   end="2026-12-03")
CLUSTER = SparkClusterConfig(image="registry.example/recsys-spark:0.2.0")


def test_the_manifest_validates_against_the_operator_fields():
    manifest = spark_application(application_name(JOB, 0.0), JOB, CLUSTER)
    jsonschema.validate(manifest, SCHEMA)
    assert manifest["spec"]["arguments"] == ["--job", JOB.model_dump_json()]
    assert SparkDataJob.model_validate_json(manifest["spec"]["arguments"][1]) == JOB
    assert manifest["spec"]["driver"]["serviceAccount"] == "recsys-spark"
    assert manifest["spec"]["driver"]["securityContext"]["runAsNonRoot"] is True
    # a field the CRD does not know is refused, not silently dropped
    manifest["spec"]["executor"]["instnaces"] = 3
    with pytest.raises(jsonschema.ValidationError, match="instnaces"):
        jsonschema.validate(manifest, SCHEMA)


def test_the_example_in_infra_is_the_rendered_manifest():
    # one definition: infra/k8s/spark/sparkapplication.example.yaml is the builder's output
    rendered = spark_application("recsys-data-example", JOB, CLUSTER)
    assert yaml.safe_load(EXAMPLE.read_text()) == rendered


class FakeKubernetes(ServedApi):
    """A Kubernetes API for SparkApplications: it validates what is created and moves the
    application through `states` one GET at a time."""

    def __init__(self, states: list[str], error: str = "", log: str = ""):
        self.states, self.error, self.log = list(states), error, log
        self.created: list[dict] = []
        self.deleted: list[str] = []
        self.log_requests: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                """Quiet: the test asserts on what the server recorded, not its access log."""

            def _send(self, code: int, body, content_type="application/json"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if not self.path.endswith(f"/apis/{GROUP}/{VERSION}/namespaces/"
                                          f"{body['metadata']['namespace']}/{PLURAL}"):
                    return self._send(404, {"kind": "Status", "code": 404})
                try:
                    jsonschema.validate(body, SCHEMA)
                except jsonschema.ValidationError as exc:
                    return self._send(422, {"kind": "Status", "code": 422,
                                            "message": exc.message})
                fake.created.append(body)
                self._send(201, body)

            def do_GET(self):
                if "/pods/" in self.path and self.path.split("?")[0].endswith("/log"):
                    fake.log_requests.append(self.path)
                    return self._send(200, fake.log.encode(), "text/plain")
                app = dict(fake.created[-1])
                state = fake.states.pop(0) if len(fake.states) > 1 else fake.states[0]
                app["status"] = {"applicationState": {"state": state},
                                 "driverInfo": {"podName": f"{app['metadata']['name']}-driver"}}
                if state == "FAILED":
                    app["status"]["applicationState"]["errorMessage"] = fake.error
                self._send(200, app)

            def do_DELETE(self):
                fake.deleted.append(self.path.rsplit("/", 1)[-1])
                self._send(200, {"kind": "Status", "status": "Success"})

        self.serve(Handler)


@pytest.fixture
def kube():
    with served_apis(FakeKubernetes) as make:
        yield make


def test_a_completed_application_returns_its_status(kube):
    fake = kube(["", "SUBMITTED", "RUNNING", "COMPLETED"])
    manifest = spark_application("recsys-data-ok", JOB, CLUSTER)
    status = submit_and_wait(fake.client, manifest, poll_seconds=0.01)
    assert status["applicationState"]["state"] == "COMPLETED"
    assert fake.created == [manifest] and not fake.states[1:]


def test_a_failed_application_fails_the_step_with_the_drivers_error(kube):
    log = "Traceback ...\nrecsys.core.errors.DataQualityError: validate: 812 of 1000 rows are bad"
    fake = kube(["SUBMITTED", "RUNNING", "FAILED"], error="driver container failed with "
                "ExitCode: 1, Reason: Error", log=log)
    manifest = spark_application("recsys-data-bad", JOB, CLUSTER)
    with pytest.raises(SparkApplicationFailed) as failure:
        submit_and_wait(fake.client, manifest, poll_seconds=0.01)
    message = str(failure.value)
    assert "recsys/recsys-data-bad FAILED: driver container failed with ExitCode: 1" in message
    assert "DataQualityError: validate: 812 of 1000 rows are bad" in message
    assert fake.log_requests and "recsys-data-bad-driver/log" in fake.log_requests[0]


def test_an_invalid_manifest_is_refused_by_the_api(kube):
    from kubernetes.client.exceptions import ApiException

    fake = kube(["COMPLETED"])
    manifest = spark_application("recsys-data-typo", JOB, CLUSTER)
    manifest["spec"]["mode"] = "clustered"
    with pytest.raises(ApiException) as refused:
        submit_and_wait(fake.client, manifest, poll_seconds=0.01)
    assert refused.value.status == 422 and not fake.created


def test_an_application_that_never_finishes_is_deleted_at_the_deadline(kube):
    fake = kube(["RUNNING"])
    manifest = spark_application("recsys-data-stuck", JOB, CLUSTER)
    with pytest.raises(TimeoutError, match="did not finish"):
        submit_and_wait(fake.client, manifest, poll_seconds=0.01, timeout_seconds=0.2)
    assert fake.deleted == ["recsys-data-stuck"]
