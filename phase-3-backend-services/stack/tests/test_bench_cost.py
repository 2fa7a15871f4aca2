"""Round trips and CPU per request, from daprd's counters and /proc figures."""

from __future__ import annotations

import pytest
from learnflow_stack.bench.cost import CostSnapshot, SidecarCalls, cost_between, counter_sum

_METRICS = """\
# HELP dapr_http_server_request_count Count of HTTP requests processed by the server.
# TYPE dapr_http_server_request_count counter
dapr_http_server_request_count{app_id="up",method="GET",path="/v1.0/healthz",status="204"} 40
dapr_http_server_request_count{app_id="up",method="POST",path="/v1.0/actors/A/{id}/method"} 5
dapr_http_server_request_count{app_id="up",method="PUT",path="/v1.0/actors/A/{id}/state"} 5
dapr_http_server_request_count_total_other{app_id="up"} 999
dapr_http_client_completed_count{app_id="up",method="PUT",path="actors/A/{id}/method/M"} 5
"""


def test_counter_sum_adds_every_series_of_the_app_but_daprd_health_checks() -> None:
    assert counter_sum(_METRICS, "dapr_http_server_request_count") == 10
    assert counter_sum(_METRICS, "dapr_http_client_completed_count") == 5
    assert counter_sum(_METRICS, "dapr_missing_count") == 0


def _snapshot(cpu: float, calls: int, deliveries: int, stolen: float = 7.0) -> CostSnapshot:
    return CostSnapshot({"app": cpu, "gone": 1.0}, {"up": SidecarCalls(calls, deliveries)}, stolen)


def test_cost_between_divides_the_differences_by_the_requests() -> None:
    cost = cost_between(
        _snapshot(2.0, 100, 10, stolen=7.0), _snapshot(2.5, 130, 20, stolen=7.2), requests=10
    )

    assert cost is not None
    assert cost.round_trips == {"up": 3.0}
    assert cost.deliveries == {"up": 1.0}
    assert cost.cpu_ms["app"] == pytest.approx(50.0)
    assert cost.total_round_trips == 3.0
    assert cost.stolen_ms == pytest.approx(20.0)


def test_no_cost_without_requests() -> None:
    assert cost_between(_snapshot(1.0, 1, 1), _snapshot(1.0, 1, 1), requests=0) is None
