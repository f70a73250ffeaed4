"""The stream workers' configs share one pydantic base (`streaming/worker_config.py`): a
shared field is accepted, refused and converted alike whichever worker it is given to, and
each worker keeps its own defaults."""
import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recsys.streaming import lake_sink, processor, quarantine_sink
from recsys.streaming.lake_sink import SinkConfig
from recsys.streaming.partitions import EVERYTHING, Membership
from recsys.streaming.processor import ProcessorConfig
from recsys.streaming.quarantine_sink import QuarantineSinkConfig
from recsys.streaming.worker_config import StreamWorkerConfig

WORKERS = (ProcessorConfig, SinkConfig, QuarantineSinkConfig)
SHARED = ("group", "consumer", "block_ms", "reclaim_idle_ms")

values = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                   st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                   st.lists(st.integers(), max_size=2))


def outcome(config_class: type[StreamWorkerConfig], name: str, value: object):
    """What the config makes of `value` for field `name`: ("ok", the stored value) or
    ("refused", the validation error's type)."""
    try:
        return "ok", getattr(config_class(**{name: value}), name)
    except pydantic.ValidationError as error:
        return "refused", error.errors()[0]["type"]


def test_every_worker_config_has_the_shared_fields_from_the_base():
    for config_class in WORKERS:
        assert issubclass(config_class, StreamWorkerConfig)
        assert set(SHARED) <= set(config_class.model_fields)
        for name in SHARED:
            # the same checks (type and bounds), declared once in worker_config
            assert config_class.model_fields[name].metadata == \
                StreamWorkerConfig.model_fields[name].metadata, (config_class, name)


@given(name=st.sampled_from(SHARED), value=values)
def test_a_shared_field_validates_alike_in_every_worker(name, value):
    outcomes = {config_class.__name__: outcome(config_class, name, value)
                for config_class in WORKERS}
    assert len(set(outcomes.values())) == 1, outcomes


@given(block_ms=st.integers(-10**9, 10**9), reclaim_idle_ms=st.integers(-10**9, 10**9))
def test_waits_are_milliseconds_from_zero(block_ms, reclaim_idle_ms):
    for config_class in WORKERS:
        if block_ms >= 0 and reclaim_idle_ms >= 0:
            config = config_class(block_ms=block_ms, reclaim_idle_ms=reclaim_idle_ms)
            assert (config.block_ms, config.reclaim_idle_ms) == (block_ms, reclaim_idle_ms)
        else:
            with pytest.raises(pydantic.ValidationError):
                config_class(block_ms=block_ms, reclaim_idle_ms=reclaim_idle_ms)


@given(name=st.text(max_size=20))
def test_group_and_consumer_names_are_any_non_empty_text(name):
    for config_class in WORKERS:
        for field in ("group", "consumer"):
            if name:
                assert getattr(config_class(**{field: name}), field) == name
            else:
                with pytest.raises(pydantic.ValidationError, match=field):
                    config_class(**{field: name})


@given(count=st.integers(-1000, 10**6))
def test_read_sizes_take_at_least_one_message(count):
    sizes = ((ProcessorConfig, "batch_size"), (SinkConfig, "read_count"),
             (SinkConfig, "max_events"), (QuarantineSinkConfig, "read_count"),
             (QuarantineSinkConfig, "max_records"))
    for config_class, name in sizes:
        if count >= 1:
            assert getattr(config_class(**{name: count}), name) == count
        else:
            with pytest.raises(pydantic.ValidationError, match=name):
                config_class(**{name: count})


@given(seconds=st.floats(-100, 100))
def test_both_sinks_flush_after_any_age_from_zero(seconds):
    for config_class in (SinkConfig, QuarantineSinkConfig):
        if seconds >= 0:
            assert config_class(max_seconds=seconds).max_seconds == seconds
        else:
            with pytest.raises(pydantic.ValidationError, match="max_seconds"):
                config_class(max_seconds=seconds)


def test_each_worker_keeps_its_own_defaults():
    assert (ProcessorConfig().group, ProcessorConfig().consumer) == \
        (processor.GROUP, "processor-1")
    assert (SinkConfig().group, SinkConfig().consumer) == (lake_sink.GROUP, "sink-1")
    assert (QuarantineSinkConfig().group, QuarantineSinkConfig().consumer) == \
        (quarantine_sink.GROUP, "quarantine-1")
    assert [c().block_ms for c in WORKERS] == [1000, 500, 500]
    assert [c().reclaim_idle_ms for c in WORKERS] == [30_000] * 3
    assert (SinkConfig().read_count, QuarantineSinkConfig().read_count) == (5000, 1000)
    assert ProcessorConfig().batch_size == 10_000
    assert ProcessorConfig().member is EVERYTHING


def test_an_unknown_setting_is_refused_by_name():
    for config_class in WORKERS:
        with pytest.raises(pydantic.ValidationError, match="block_msec"):
            config_class(block_msec=10)


def test_what_the_workers_set_after_construction_is_checked_too():
    config = ProcessorConfig(consumer="p2", member=Membership.parse("1/2"))
    config.batch_size = 500  # `recsys stream processor --batch-size 500`
    config.member = EVERYTHING  # build_processor on Kafka
    assert (config.batch_size, config.member, config.consumer) == (500, EVERYTHING, "p2")
    with pytest.raises(pydantic.ValidationError, match="batch_size"):
        config.batch_size = 0
    assert config.batch_size == 500
