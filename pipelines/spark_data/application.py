"""The data job on a cluster: a Kubeflow Spark Operator `SparkApplication`
(`sparkoperator.k8s.io/v1beta2`) that runs `recsys.pipelines.spark_data.job`, submitted
through the Kubernetes API, waited for, and turned into a step failure that carries the
driver's error when it fails."""
from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from recsys.core.errors import RecsysError
from recsys.pipelines.spark_data.job import SparkDataJob

log = logging.getLogger(__name__)
GROUP, VERSION, PLURAL = "sparkoperator.k8s.io", "v1beta2", "sparkapplications"
SPARK_VERSION = "4.0.1"
"""The Spark of the image (PySpark's version, pinned in setup.cfg's `spark` extra)."""
JOB_FILE = "local:///opt/venv/lib/python3.11/site-packages/recsys/pipelines/spark_data/job.py"
"""The job module inside the project image (its virtualenv is /opt/venv)."""
DONE, FAILED = {"COMPLETED"}, {"FAILED", "SUBMISSION_FAILED"}
LOG_TAIL_LINES = 40


class SparkApplicationFailed(RecsysError):
    """The SparkApplication ended in a failed state (the message holds the driver's error)."""


class SparkClusterConfig(BaseModel):
    """Where and how big the job runs on the cluster."""

    model_config = ConfigDict(extra="forbid")

    namespace: str = "recsys"
    image: str
    service_account: str = "recsys-spark"
    """The driver's service account (infra/k8s/spark/rbac.yaml: pods and services in its
    namespace only, what Spark on Kubernetes needs to start executors)."""
    credentials_secret: str = "recsys-s3"
    """Secret with the S3 credentials (AWS_ACCESS_KEY_ID, ...) for driver and executors."""
    driver_cores: int = Field(1, gt=0)
    driver_memory: str = "2g"
    executor_instances: int = Field(2, gt=0)
    executor_cores: int = Field(1, gt=0)
    executor_memory: str = "4g"
    shuffle_partitions: int = Field(64, gt=0)
    ttl_seconds: int = Field(3600, gt=0)
    """The operator deletes the finished application (and its pods) after this long."""


def application_name(job: SparkDataJob, submitted_at: float) -> str:
    """A DNS-1123 name unique per job and submission."""
    digest = hashlib.sha256(f"{job.model_dump_json()}|{submitted_at}".encode()).hexdigest()
    return f"recsys-data-{digest[:12]}"


def spark_application(name: str, job: SparkDataJob, cluster: SparkClusterConfig) -> dict:
    """The SparkApplication manifest of `job` (infra/k8s/spark/sparkapplication.yaml is this,
    rendered for an example job)."""
    pod_security = {"runAsNonRoot": True, "runAsUser": 1000,
                    "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    env_from = [{"secretRef": {"name": cluster.credentials_secret}}]
    labels = {"app.kubernetes.io/name": "recsys-data", "app.kubernetes.io/part-of": "recsys"}
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "SparkApplication",
        "metadata": {"name": name, "namespace": cluster.namespace, "labels": labels},
        "spec": {
            "type": "Python", "pythonVersion": "3", "mode": "cluster",
            "image": cluster.image, "imagePullPolicy": "IfNotPresent",
            "mainApplicationFile": JOB_FILE, "arguments": ["--job", job.model_dump_json()],
            "sparkVersion": SPARK_VERSION,
            "sparkConf": {"spark.sql.shuffle.partitions": str(cluster.shuffle_partitions),
                          "spark.sql.session.timeZone": "UTC",
                          "spark.sql.execution.arrow.pyspark.enabled": "true"},
            "restartPolicy": {"type": "Never"},
            "timeToLiveSeconds": cluster.ttl_seconds,
            "driver": {"cores": cluster.driver_cores, "memory": cluster.driver_memory,
                       "serviceAccount": cluster.service_account, "labels": labels,
                       "envFrom": env_from, "securityContext": pod_security},
            "executor": {"instances": cluster.executor_instances,
                         "cores": cluster.executor_cores, "memory": cluster.executor_memory,
                         "labels": labels, "envFrom": env_from,
                         "securityContext": pod_security},
        },
    }


def submit_and_wait(api_client: Any, manifest: dict, poll_seconds: float = 10.0,
                    timeout_seconds: float = 6 * 3600) -> dict:
    """Create the application, poll its state until it completes (returns its status) or
    fails (raises SparkApplicationFailed with the operator's message and the tail of the
    driver's log). On timeout the application is deleted and TimeoutError raised."""
    from kubernetes import client

    objects = client.CustomObjectsApi(api_client)
    namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    objects.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest)
    log.info("spark: submitted SparkApplication %s/%s", namespace, name)
    deadline = time.monotonic() + timeout_seconds
    last_state = None
    while True:
        current = objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        status = current.get("status") or {}
        state = (status.get("applicationState") or {}).get("state", "")
        if state != last_state:
            log.info("spark: %s is %s", name, state or "waiting for the operator")
            last_state = state
        if state in DONE:
            return status
        if state in FAILED:
            raise SparkApplicationFailed(_failure(api_client, namespace, name, status))
        if time.monotonic() > deadline:
            objects.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
            raise TimeoutError(f"SparkApplication {namespace}/{name} did not finish within "
                               f"{timeout_seconds:.0f}s (last state {state or 'none'}); "
                               "deleted")
        time.sleep(poll_seconds)


def _failure(api_client: Any, namespace: str, name: str, status: dict) -> str:
    from kubernetes import client

    state = status.get("applicationState") or {}
    message = (f"SparkApplication {namespace}/{name} {state.get('state')}: "
               f"{state.get('errorMessage') or 'no message from the operator'}")
    pod = (status.get("driverInfo") or {}).get("podName")
    if pod:
        try:
            tail = client.CoreV1Api(api_client).read_namespaced_pod_log(
                pod, namespace, tail_lines=LOG_TAIL_LINES)
            message += f"\n--- driver {pod}, last {LOG_TAIL_LINES} lines ---\n{tail}"
        except Exception as exc:  # the log is a courtesy: the failure is reported anyway
            message += f"\n(driver log of {pod} unreadable: {exc})"
    return message


def in_cluster_api_client() -> Any:
    """A Kubernetes API client from the pod's service account (the step's identity)."""
    from kubernetes import client, config

    config.load_incluster_config()
    return client.ApiClient()
