"""Settings that must agree with what lives outside the service."""

import re
from pathlib import Path

import yaml
from course_agent.generation_claim import LEASE_SECONDS
from course_agent.settings import Settings

RESILIENCY = Path(__file__).resolve().parents[3] / "components" / "resiliency.yaml"


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s)", duration)
    assert match, f"unexpected duration {duration!r}"
    value, unit = float(match[1]), match[2]
    return value / 1000 if unit == "ms" else value


def test_the_progress_deadline_outlasts_the_sidecars_own_attempts() -> None:
    """``progress_timeout_seconds`` is the lookup's deadline; the sidecar's policy must fit in
    it, or the lookup would be cut off while Dapr still retries."""
    spec = yaml.safe_load(RESILIENCY.read_text())["spec"]
    target = spec["targets"]["apps"]["user-progress"]
    attempt = _seconds(spec["policies"]["timeouts"][target["timeout"]])
    retry = spec["policies"]["retries"][target["retry"]]
    attempts = retry["maxRetries"] + 1
    worst_case = attempts * attempt + retry["maxRetries"] * _seconds(retry["duration"])

    deadline = Settings.model_fields["progress_timeout_seconds"].default

    assert worst_case < deadline, (worst_case, deadline)


def test_a_waiter_outlasts_a_holders_generation_or_lease_and_its_turn_outlasts_both() -> None:
    """A request that finds its lesson claimed waits for the holder's generation, or for the
    lease of a holder that died to lapse; then it may generate itself, within its actor turn."""
    for timeout, retries in ((1.0, 0), (30.0, 2)):
        settings = Settings(llm_timeout_seconds=timeout, llm_max_retries=retries)
        generation = 2 * timeout * (retries + 1)

        assert settings.claim_wait_seconds > max(generation, LEASE_SECONDS)
        assert settings.actor_call_timeout_seconds > settings.claim_wait_seconds + generation
