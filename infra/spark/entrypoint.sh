#!/bin/bash
# Entrypoint of the Spark image (infra/Dockerfile.spark): Spark's container protocol on
# Kubernetes, the way `spark-submit --master k8s://...` and the Kubeflow Spark Operator
# start their pods.
#   driver ARGS   spark-submit in client mode inside the driver pod (ARGS: the properties
#                 file, the application and its arguments, as the submission sets them)
#   executor      the executor backend, configured by the SPARK_* variables the driver
#                 gives each executor pod (driver URL, id, cores, memory, Java options)
#   anything else runs as given: a Kubeflow step's command, `recsys ...`, a shell
set -euo pipefail

java_options() {
  # SPARK_JAVA_OPT_0, SPARK_JAVA_OPT_1, ...: in their numeric order
  local i=0 name
  while name="SPARK_JAVA_OPT_$i" && [ -n "${!name+x}" ]; do
    printf '%s\0' "${!name}"
    i=$((i + 1))
  done
}

case "${1:-}" in
  driver)
    shift
    bind="${SPARK_DRIVER_BIND_ADDRESS:-0.0.0.0}"
    exec "$SPARK_HOME/bin/spark-submit" --deploy-mode client \
      --conf "spark.driver.bindAddress=$bind" \
      --conf "spark.executorEnv.SPARK_DRIVER_POD_IP=$bind" "$@"
    ;;
  executor)
    shift
    for required in SPARK_DRIVER_URL SPARK_EXECUTOR_ID SPARK_EXECUTOR_CORES \
                     SPARK_EXECUTOR_MEMORY SPARK_APPLICATION_ID SPARK_EXECUTOR_POD_IP; do
      [ -n "${!required:-}" ] || { echo "executor: $required is not set" >&2; exit 64; }
    done
    mapfile -d '' options < <(java_options)
    exec java "-Xms$SPARK_EXECUTOR_MEMORY" "-Xmx$SPARK_EXECUTOR_MEMORY" "${options[@]}" \
      -cp "${SPARK_CLASSPATH:+$SPARK_CLASSPATH:}$SPARK_HOME/jars/*" \
      org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
      --driver-url "$SPARK_DRIVER_URL" --executor-id "$SPARK_EXECUTOR_ID" \
      --cores "$SPARK_EXECUTOR_CORES" --app-id "$SPARK_APPLICATION_ID" \
      --hostname "$SPARK_EXECUTOR_POD_IP" \
      --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}" \
      --podName "${SPARK_EXECUTOR_POD_NAME:-$(hostname)}"
    ;;
  "")
    exec recsys --help
    ;;
  *)
    exec "$@"
    ;;
esac
