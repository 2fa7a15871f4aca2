"""Both services stand on the skill: their scaffold-owned files (app factory, Dockerfile,
Deployment manifest, Subscription) are byte for byte what the generator writes for their
options. Domain code is the service's; the scaffold is the skill's."""

from __future__ import annotations

from types import ModuleType

import pytest

from .conftest import REPO_ROOT

# The options each service was scaffolded with (also listed in SKILL.md).
SERVICES = {
    "course-agent": {
        "actor": "LessonGenerationActor",
        "publish": "lesson-generated",
        "llm": True,
        "replay": True,
    },
    "user-progress": {
        "actor": "LearnerProgressActor",
        "subscribe": "lesson-generated",
        "publish": "progress-updated",
    },
}


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_the_scaffold_owned_files_are_the_generators_output(
    scaffold: ModuleType, name: str
) -> None:
    planned = scaffold.plan(scaffold.Options(name, **SERVICES[name]))
    owned = [f for f in planned if f.ownership == "scaffold"]
    drifted = [
        str(f.path)
        for f in owned
        if not (REPO_ROOT / f.path).is_file() or (REPO_ROOT / f.path).read_text() != f.content
    ]

    assert {f.path.name for f in owned} >= {"main.py", "Dockerfile", f"{name}.yaml"}
    assert not drifted, (
        f"{name}: these differ from the fastapi-dapr-agent templates; edit the template (or the "
        f"service's own code in wiring.py) and regenerate: {drifted}"
    )


def test_every_deployed_service_is_covered_by_the_drift_check() -> None:
    apps = REPO_ROOT / "phase-3-backend-services" / "deploy" / "base" / "apps"
    deployed = {p.stem for p in apps.glob("*.yaml") if "\nkind: Service\n" in p.read_text()}

    assert deployed == set(SERVICES)
