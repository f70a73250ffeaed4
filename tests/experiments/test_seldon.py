"""The Seldon objects of an experiment whose arms are Models of their own."""
import pytest

from recsys.core.errors import ConfigError
from recsys.experiments.definition import ExperimentDefinition, Variant
from recsys.experiments.seldon import arm_manifests, arm_model_names, seldon_weights


def seeds_split(**changes) -> ExperimentDefinition:
    variants = (Variant(label="control", target="popularity", weight=30),
                Variant(label="a", target="champion", weight=35, version="4"),
                Variant(label="b", target="5", weight=35, version="5"))
    return ExperimentDefinition(**{"name": "ab_1", "variants": variants, **changes})


def test_the_seldon_experiment_carries_the_definitions_split_over_one_model_per_arm():
    objects = arm_manifests(seeds_split(), "s3://recsys-models/experiments/ab-1/")
    models = [o for o in objects if o["kind"] == "Model"]
    (experiment,) = [o for o in objects if o["kind"] == "Experiment"]
    assert [m["metadata"]["name"] for m in models] == [
        "recsys-ab-1-control", "recsys-ab-1-a", "recsys-ab-1-b"]
    assert [m["spec"]["storageUri"] for m in models] == [
        f"s3://recsys-models/experiments/ab-1/arms/{label}" for label in ("control", "a", "b")]
    assert experiment["metadata"]["name"] == "recsys-ab-1"
    assert experiment["spec"]["candidates"] == [
        {"name": "recsys-ab-1-control", "weight": 30}, {"name": "recsys-ab-1-a", "weight": 35},
        {"name": "recsys-ab-1-b", "weight": 35}]
    assert "default" not in experiment["spec"]  # its own endpoint: recsys-ab-1.experiment
    assert all(o["apiVersion"] == "mlops.seldon.io/v1alpha1" for o in objects)
    assert {m["metadata"]["labels"]["recsys/variant"] for m in models} == {"control", "a", "b"}


def test_fractional_weights_become_basis_points_of_the_total():
    definition = seeds_split(variants=(
        Variant(label="control", target="popularity", weight=0.5),
        Variant(label="a", target="champion", weight=0.25, version="4"),
        Variant(label="b", target="5", weight=0.25, version="5")))
    assert seldon_weights(definition) == {"control": 5000, "a": 2500, "b": 2500}


def test_labels_that_give_one_model_name_are_refused():
    definition = seeds_split(variants=(
        Variant(label="b_1", target="popularity", weight=50),
        Variant(label="b-1", target="champion", weight=50, version="4")))
    with pytest.raises(ConfigError, match="same Seldon Model name"):
        arm_model_names(definition)


def test_a_name_kubernetes_refuses_is_refused_before_any_object_is_written():
    definition = seeds_split(name="x" * 60)
    with pytest.raises(ConfigError, match="not a valid Kubernetes name"):
        arm_manifests(definition, "s3://b/p")
