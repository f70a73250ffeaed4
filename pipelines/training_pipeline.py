"""The training pipeline: extract -> validate -> preprocess (pandas engine) or the Spark
data job (`engine=spark`) -> features (Feast) and train -> evaluate -> gate -> (promote,
only if the gate approves) -> (deploy, only on a cluster whose `serving_target` names the
Seldon Model or KServe InferenceService to move). Wiring only; every step is a project
component."""
from kfp import compiler, dsl

from recsys.components.deploy.component import deploy_op
from recsys.components.evaluate.component import evaluate_op
from recsys.components.extract.component import extract_op, fingerprint_op
from recsys.components.features.component import features_op
from recsys.components.gate.component import gate_op, promote_op
from recsys.components.image import SPARK_IMAGE
from recsys.components.preprocess.component import preprocess_op
from recsys.components.preprocess.config import DEFAULT_LOOKBACK_DAYS, PreprocessConfig
from recsys.components.train.component import train_op
from recsys.components.validate.component import validate_op
from recsys.components.validate.rules import ValidationConfig
from recsys.core.lifecycle.gate import DEFAULT_POLICY
from recsys.core.models.session_scoring import DEFAULT_SESSION_MODEL
from recsys.core.settings import DEFAULT_REGISTERED_MODEL
from recsys.pipelines.cluster_identity import (
    PIPELINE_IDENTITY,
    as_identity,
    with_feature_store,
    with_lake_store,
    with_registry_lock,
)
from recsys.pipelines.outcome_reporting import outcome_reporter
from recsys.pipelines.spark_data.component import spark_data_op
from recsys.pipelines.task_resources import sized

PIPELINE_NAME = "recsys-training"
NETWORK_RETRIES = 2


def train_gate_promote(processed, quality_report, source_hash, *, lake_uri, s3_endpoint_url,
                       state_dir, feast_profile, tracking_uri,
                       experiment, models, neighbours, shrinkage, model_params, search_trials,
                       search_budget_seconds, session_model, session_model_params,
                       registered_model, gate_policy, trigger, run_label, serving_target,
                       serving_namespace, model_artifacts, rollout_timeout_seconds) -> None:
    """features -> train -> evaluate -> gate -> (promote -> (deploy)), after either data
    path."""
    published = features_op(processed=processed, lake_uri=lake_uri,
                            s3_endpoint_url=s3_endpoint_url, state_dir=state_dir,
                            feast_profile=feast_profile)
    published.set_caching_options(False).set_retry(num_retries=NETWORK_RETRIES)
    with_lake_store(with_feature_store(sized(published)))
    trained = train_op(processed=processed, quality_report=quality_report,
                       tracking_uri=tracking_uri, experiment=experiment,
                       source_sha256=source_hash, models=models,
                       neighbours=neighbours, shrinkage=shrinkage, model_params=model_params,
                       search_trials=search_trials,
                       search_budget_seconds=search_budget_seconds,
                       session_model=session_model,
                       session_model_params=session_model_params)
    trained.set_retry(num_retries=NETWORK_RETRIES)
    as_identity(sized(trained), PIPELINE_IDENTITY)
    evaluated = evaluate_op(processed=processed,
                            trained=trained.outputs["trained"], tracking_uri=tracking_uri,
                            registered_model=registered_model, policy=gate_policy)
    evaluated.set_caching_options(False).set_retry(num_retries=NETWORK_RETRIES)
    as_identity(sized(evaluated), PIPELINE_IDENTITY)
    gate = gate_op(evaluation=evaluated.outputs["evaluation"], tracking_uri=tracking_uri,
                   registered_model=registered_model, policy=gate_policy, trigger=trigger,
                   run_label=run_label)
    gate.set_caching_options(False)
    with_registry_lock(as_identity(sized(gate), PIPELINE_IDENTITY))
    with dsl.If(gate.outputs["Output"] == True):  # noqa: E712 - a KFP condition, not Python
        promoted = promote_op(outcome=gate.outputs["outcome"], tracking_uri=tracking_uri,
                              registered_model=registered_model)
        promoted.set_caching_options(False).set_retry(num_retries=NETWORK_RETRIES)
        with_registry_lock(as_identity(sized(promoted), PIPELINE_IDENTITY))
        # on a cluster: move the serving resource to the new champion, or move it back.
        # kfp.local runs leave serving_target empty: local serving hot-swaps by itself
        with dsl.If(promoted.output == True), dsl.If(serving_target != ""):  # noqa: E712
            deployed = deploy_op(outcome=gate.outputs["outcome"], tracking_uri=tracking_uri,
                                 registered_model=registered_model,
                                 serving_target=serving_target,
                                 serving_namespace=serving_namespace,
                                 model_artifacts=model_artifacts,
                                 s3_endpoint_url=s3_endpoint_url,
                                 rollout_timeout_seconds=rollout_timeout_seconds)
            # no retry: a failed rollout has already moved the champion back
            deployed.set_caching_options(False)
            with_lake_store(with_registry_lock(as_identity(sized(deployed), PIPELINE_IDENTITY)))


def training_steps(source, lake_uri, tracking_uri, source_sha256, source_format, start, end,
                   s3_endpoint_url, experiment, registered_model, max_bad_ratio, holdout_days,
                   lookback_days, models, neighbours, shrinkage, model_params, search_trials,
                   search_budget_seconds, session_model, session_model_params, gate_policy,
                   state_dir, feast_profile, trigger, run_label, engine, spark_submit,
                   spark_namespace, spark_image, serving_target, serving_namespace,
                   model_artifacts, rollout_timeout_seconds) -> None:
    """The training pipeline's steps (wired into the caller's pipeline)."""
    fingerprint = fingerprint_op(source=source, lake_uri=lake_uri,
                                 s3_endpoint_url=s3_endpoint_url, source_sha256=source_sha256)
    with_lake_store(sized(fingerprint)).set_caching_options(False).set_retry(
        num_retries=NETWORK_RETRIES)
    # the data path: one Spark job (local mode in the step, or a SparkApplication), or the
    # pandas engine's three steps. The rest is wired into each branch by the same function:
    # kfp.local 2.17 cannot pass an artifact out of a branch (dsl.OneOf of artifacts)
    tail = dict(lake_uri=lake_uri, s3_endpoint_url=s3_endpoint_url, state_dir=state_dir,
                feast_profile=feast_profile, tracking_uri=tracking_uri,
                experiment=experiment, models=models, neighbours=neighbours,
                shrinkage=shrinkage, model_params=model_params, search_trials=search_trials,
                search_budget_seconds=search_budget_seconds, session_model=session_model,
                session_model_params=session_model_params,
                registered_model=registered_model, gate_policy=gate_policy, trigger=trigger,
                run_label=run_label, serving_target=serving_target,
                serving_namespace=serving_namespace, model_artifacts=model_artifacts,
                rollout_timeout_seconds=rollout_timeout_seconds)
    with dsl.If(engine == "spark"):
        on_spark = spark_data_op(
            source=source, lake_uri=lake_uri, source_format=source_format, start=start,
            end=end, s3_endpoint_url=s3_endpoint_url, source_sha256=fingerprint.output,
            max_bad_ratio=max_bad_ratio, holdout_days=holdout_days,
            lookback_days=lookback_days, spark_submit=spark_submit,
            spark_namespace=spark_namespace, spark_image=spark_image)
        with_lake_store(sized(on_spark)).set_retry(num_retries=NETWORK_RETRIES)
        train_gate_promote(on_spark.outputs["processed"], on_spark.outputs["quality_report"],
                           on_spark.outputs["Output"], **tail)
    with dsl.Else():
        extracted = extract_op(source=source, lake_uri=lake_uri, source_format=source_format,
                               start=start, end=end, s3_endpoint_url=s3_endpoint_url,
                               source_sha256=fingerprint.output)
        with_lake_store(sized(extracted)).set_retry(num_retries=NETWORK_RETRIES)
        validated = validate_op(events=extracted.outputs["events"], lake_uri=lake_uri,
                                max_bad_ratio=max_bad_ratio, s3_endpoint_url=s3_endpoint_url)
        with_lake_store(sized(validated))
        processed = preprocess_op(clean=validated.outputs["clean"],
                                  holdout_days=holdout_days, lookback_days=lookback_days,
                                  window_end=end)
        sized(processed)
        train_gate_promote(processed.outputs["processed"], validated.outputs["quality_report"],
                           extracted.outputs["Output"], **tail)


@dsl.pipeline(name=PIPELINE_NAME,
              description="Retrain recommenders on a fresh window and promote the best "
                          "candidate to MLflow alias 'champion' only when it beats the "
                          "current champion on the same holdout.")
def training_pipeline(
    source: str,
    lake_uri: str,
    tracking_uri: str,
    source_sha256: str = "",
    source_format: str = "",
    start: str = "",
    end: str = "",
    s3_endpoint_url: str = "",
    experiment: str = "recsys-training",
    registered_model: str = DEFAULT_REGISTERED_MODEL,
    max_bad_ratio: float = ValidationConfig().max_bad_ratio,
    holdout_days: float = PreprocessConfig().holdout_days,
    lookback_days: float = DEFAULT_LOOKBACK_DAYS,
    models: list = ["popularity", "item_knn", "ease"],  # noqa: B006 - KFP needs a literal
    neighbours: int = 100,
    shrinkage: float = 10.0,
    model_params: dict = {},  # noqa: B006 - KFP needs a literal default
    search_trials: int = 0,
    search_budget_seconds: float = 60.0,
    session_model: str = DEFAULT_SESSION_MODEL,
    session_model_params: dict = {},  # noqa: B006 - KFP needs a literal default
    gate_policy: dict = DEFAULT_POLICY.model_dump(),  # a GatePolicy (evaluate and gate)
    state_dir: str = ".recsys",
    feast_profile: str = "local",
    trigger: str = "",
    run_label: str = "",
    engine: str = "pandas",
    spark_submit: str = "local",
    spark_namespace: str = "recsys",
    spark_image: str = SPARK_IMAGE,
    serving_target: str = "",
    serving_namespace: str = "recsys",
    model_artifacts: str = "s3://recsys-models/recsys",
    rollout_timeout_seconds: float = 600.0,
):
    # runs after the steps, failed ones too: the run's status reaches the Pushgateway
    with dsl.ExitHandler(outcome_reporter("training")):
        training_steps(source=source, lake_uri=lake_uri, tracking_uri=tracking_uri,
                       source_sha256=source_sha256, source_format=source_format, start=start,
                       end=end, s3_endpoint_url=s3_endpoint_url, experiment=experiment,
                       registered_model=registered_model, max_bad_ratio=max_bad_ratio,
                       holdout_days=holdout_days, lookback_days=lookback_days, models=models,
                       neighbours=neighbours, shrinkage=shrinkage, model_params=model_params,
                       search_trials=search_trials,
                       search_budget_seconds=search_budget_seconds,
                       session_model=session_model,
                       session_model_params=session_model_params,
                       gate_policy=gate_policy, state_dir=state_dir,
                       feast_profile=feast_profile, trigger=trigger, run_label=run_label,
                       engine=engine, spark_submit=spark_submit,
                       spark_namespace=spark_namespace, spark_image=spark_image,
                       serving_target=serving_target, serving_namespace=serving_namespace,
                       model_artifacts=model_artifacts,
                       rollout_timeout_seconds=rollout_timeout_seconds)


def compile_pipeline(path: str) -> str:
    """Write the Kubeflow IR YAML of the training pipeline to `path`."""
    compiler.Compiler().compile(training_pipeline, path)
    return path


if __name__ == "__main__":
    compile_pipeline("build/training_pipeline.yaml")
