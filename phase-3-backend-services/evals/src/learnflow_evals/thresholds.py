"""The gate's thresholds and the readability band of each level (evals/thresholds.yaml)."""

from pathlib import Path

import yaml
from learnflow_contracts.levels import Level
from learnflow_contracts.strict import StrictModel
from pydantic import model_validator

from learnflow_evals.cases import EVALS_DIR

THRESHOLDS_FILE = EVALS_DIR / "thresholds.yaml"


class Band(StrictModel):
    min: float
    max: float

    def __contains__(self, value: float) -> bool:
        return self.min <= value <= self.max


class Thresholds(StrictModel):
    min_pass_rate: dict[str, float]
    level_bands: dict[Level, Band]

    @model_validator(mode="after")
    def _complete(self) -> "Thresholds":
        if "default" not in self.min_pass_rate:
            raise ValueError("min_pass_rate needs a `default` for graders not named")
        missing = set(Level) - set(self.level_bands)
        if missing:
            raise ValueError(f"level_bands has no band for {sorted(missing)}")
        return self

    def min_rate(self, grader: str) -> float:
        return self.min_pass_rate.get(grader, self.min_pass_rate["default"])


def load_thresholds(path: Path = THRESHOLDS_FILE) -> Thresholds:
    return Thresholds.model_validate(yaml.safe_load(path.read_text()))
