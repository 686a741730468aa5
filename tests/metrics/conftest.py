import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from health.metrics import clear_caches

TOKEN = "metrics-test-token-0123456789"


@pytest.fixture(autouse=True)
def _fresh_gauges(settings):
    """Every test reads the database's gauges afresh, and /metrics takes the test token."""
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = []
    clear_caches()
    yield
    clear_caches()


def counter(name: str, **labels) -> float:
    """This process's value of a sample (0 when it has not been counted yet): tests
    compare it before and after, as the registry is shared by the whole run."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    """GET /metrics with the token, parsed: {(sample name, sorted labels): value}."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **headers)
    assert response.status_code == 200, response.content
    return parse(response.content.decode())


def parse(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))
