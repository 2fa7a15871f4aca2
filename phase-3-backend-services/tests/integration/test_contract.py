"""The OpenAPI documents say what happens: schemathesis generates requests from each service's
own document and sends them to the running services (real stack, a teacher's token), and every
answer must be documented, well-formed and never a 5xx. Bounded: a fixed number of examples per
operation, no shrinking beyond that."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from learnflow_stack.stack import Stack
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 25
BOUNDED = settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="session")
def course_agent_api(stack: Stack) -> Any:
    return schemathesis.openapi.from_url(f"{stack.app('course-agent').url}/openapi.json")


@pytest.fixture(scope="session")
def user_progress_api(stack: Stack) -> Any:
    return schemathesis.openapi.from_url(f"{stack.app('user-progress').url}/openapi.json")


course_agent = schemathesis.pytest.from_fixture("course_agent_api")
user_progress = schemathesis.pytest.from_fixture("user_progress_api")


@course_agent.parametrize()
@BOUNDED
def test_course_agent_answers_as_its_openapi_says(case: Any, stack: Stack) -> None:
    case.call_and_validate(headers=stack.auth_headers(), checks=CHECKS, timeout=30)


@user_progress.parametrize()
@BOUNDED
def test_user_progress_answers_as_its_openapi_says(case: Any, stack: Stack) -> None:
    case.call_and_validate(headers=stack.auth_headers(), checks=CHECKS, timeout=30)
