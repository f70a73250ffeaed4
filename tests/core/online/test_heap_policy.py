import gc

import pytest

from recsys.core.online.heap_policy import BATCH_GEN0_THRESHOLD, batch_worker_heap


@pytest.fixture
def restored_collector():
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()


def test_a_batch_worker_freezes_its_startup_heap_and_collects_the_young_less_often(
        restored_collector):
    _, gen1, gen2 = gc.get_threshold()
    startup = [[k] for k in range(1000)]  # containers alive at start
    batch_worker_heap()
    assert gc.get_threshold() == (BATCH_GEN0_THRESHOLD, gen1, gen2)
    assert gc.get_freeze_count() >= len(startup)
    assert gc.get_count()[0] < 100  # the collection before the freeze emptied the young
    cycle = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1  # cycles made later are still found
