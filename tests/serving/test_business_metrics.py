"""What the business dashboard reads of the served lists: items shown, intra-list category
diversity, catalogue coverage over a window that restarts and stays within the catalogue."""
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from recsys.serving.metrics import CoverageWindow, ServiceMetrics

CATALOGUE = {"a": "shoes", "b": "shoes", "c": "bags", "d": "hats", "e": "hats"}


def samples(metrics: ServiceMetrics) -> dict:
    text = generate_latest(metrics.registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_lists_count_items_diversity_and_coverage():
    metrics = ServiceMetrics()
    metrics.observe_list(["a", "b", "c", "d"], CATALOGUE)  # 3 categories / 4 items
    metrics.observe_list(["a", "zzz"], CATALOGUE)  # one known category: no diversity sample
    values = samples(metrics)
    assert values[("recsys_items_served_total", ())] == 6
    assert values[("recsys_list_category_diversity_count", ())] == 1
    assert values[("recsys_list_category_diversity_sum", ())] == 0.75
    assert values[("recsys_list_category_diversity_bucket", (("le", "0.7"),))] == 0
    assert values[("recsys_list_category_diversity_bucket", (("le", "0.8"),))] == 1
    assert values[("recsys_catalogue_coverage", ())] == 4 / 5  # a b c d of 5; zzz not counted


def test_coverage_restarts_with_its_window_and_ignores_unknown_items():
    now = [0.0]
    window = CoverageWindow(3600, clock=lambda: now[0])
    assert window.add(["a", "b"], CATALOGUE) == 2 / 5
    assert window.add(["b", "ghost", "c"], CATALOGUE) == 3 / 5
    now[0] = 3599.0
    assert window.add(["d"], CATALOGUE) == 4 / 5
    now[0] = 3600.0  # a new hour: only what is shown from now on
    assert window.add(["e"], CATALOGUE) == 1 / 5
    assert len(window._shown) == 1
