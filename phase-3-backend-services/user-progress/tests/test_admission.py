from __future__ import annotations

import pytest
from learnflow_service_kit.errors import ServiceError
from user_progress.admission import PerLearnerAdmission


async def test_beyond_the_limit_a_learner_is_refused_at_once_and_others_are_not() -> None:
    admission = PerLearnerAdmission(limit=2)
    async with admission.admit("ada"), admission.admit("ada"):
        with pytest.raises(ServiceError) as refused:
            async with admission.admit("ada"):
                pass
        async with admission.admit("bob"):
            pass
    assert refused.value.http_status == 429
    assert refused.value.code == "too_many_pending_updates"
    assert refused.value.headers() == {"Retry-After": "1"}
    # Once the pending ones are done, the learner is admitted again.
    async with admission.admit("ada"):
        pass
