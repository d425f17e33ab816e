"""What an apply reports: each step's outcome, and the run's."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from orchestrator.errors import OrchError
from orchestrator.plan import Action


class StepStatus(str, enum.Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    STOPPED = "stopped"  # an external step, left for a human
    #: started (its intent journaled) but its outcome not recorded: maybe done, maybe not
    INTERRUPTED = "interrupted"


@dataclass
class StepOutcome:
    step_id: str
    status: StepStatus
    action: Action
    attempts: int = 0
    duration: float = 0.0
    error: str = ""
    #: for skipped steps: the failed or external step that caused the skip
    root_cause: str = ""


@dataclass
class ApplyReport:
    run_id: str
    outcomes: dict[str, StepOutcome] = field(default_factory=dict)
    wall_seconds: float = 0.0
    #: why the run stopped starting steps early ("" when it did not)
    stopped_by: str = ""
    #: a failure of the run itself (journal not written, lease lost): the run failed
    error: OrchError | None = None

    def of(self, status: StepStatus) -> list[StepOutcome]:
        return [o for o in self.outcomes.values() if o.status is status]

    @property
    def ok(self) -> bool:
        return self.error is None and \
            all(o.status is StepStatus.SUCCEEDED for o in self.outcomes.values())

    def root_causes(self) -> list[StepOutcome]:
        return [o for o in self.outcomes.values()
                if o.status in (StepStatus.FAILED, StepStatus.STOPPED)]
