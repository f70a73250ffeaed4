"""What the recommendation service needs of each collaborator, and how each is let go.

`RecommendationService` (service.py) takes its collaborators by what they do, not by
class: the model answering, the recommendation cache, the live-session reader, the request
log, the experiment router and the business rules in force. `build.py` gives it the real
ones (ModelSource, RecommendationCache, Feast's SessionReader, the lake's RequestLog,
ExperimentRouter, LiveRules); a test may give any object with these methods. Each has
`close()`: the runtime's unload closes them all (`RecommendationService.close`).

Feast's SessionReader and core's RequestLog have no `close()` of their own: `KeptOpen` and
`FlushedOnClose` give them theirs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NotRequired, Protocol, TypedDict

if TYPE_CHECKING:
    from recsys.core.online.business_rules import ActiveRules
    from recsys.feature_repo.features.live_session import LiveSession
    from recsys.serving.experiment_router import ActiveExperiment, Arm
    from recsys.serving.model_source import LoadedModel, RegistryHealth
    from recsys.serving.ranking import RuleApplied


class ModelProvider(Protocol):
    """The model answering now (`ModelSource`): requests read `current` once each."""

    @property
    def current(self) -> LoadedModel: ...

    @property
    def registry_health(self) -> RegistryHealth:
        """What the registry said of the champion, for the alerts (empty: not read)."""
        ...

    def close(self) -> None:
        """Stop watching for a new champion."""
        ...


class ListAnswer(TypedDict):
    """A list as `answers.Recommendation.as_dict()` gives it: the REST answer (after the id
    asked about) and what the cache stores."""

    item_ids: list[str]
    scores: list[float]
    model_version: str
    fallback: bool
    path: str
    cached: bool
    experiment: str | None
    variant: str | None
    recommendation_id: str | None
    rules_applied: NotRequired[list[RuleApplied]]
    scorer: NotRequired[str]


class ListCache(Protocol):
    """Answered lists by everything they depend on (`RecommendationCache`)."""

    def key(self, model_version: str, user_id: str, k: int, session_key: str,
            exclude: tuple[str, ...], category: str | None) -> str: ...

    def get(self, key: str) -> ListAnswer | None: ...

    def set(self, key: str, value: ListAnswer) -> None: ...

    def close(self) -> None:
        """Send what is still queued for the shared tier."""
        ...


class SessionSource(Protocol):
    """A user's live session (Feast's `SessionReader`, through `KeptOpen`)."""

    def read(self, user_id: str) -> LiveSession | None:
        """None when the user has no session row."""
        ...

    def close(self) -> None: ...


class AnsweredList(Protocol):
    """What a request log keeps of an answer (`answers.Recommendation`)."""

    item_ids: list[str]
    scores: list[float]
    model_version: str
    fallback: bool
    path: str
    cached: bool
    experiment: str | None
    variant: str | None
    recommendation_id: str | None


class RequestRecorder(Protocol):
    """Where answered lists are written (the lake's `RequestLog`, through
    `FlushedOnClose`): the inputs of drift monitoring and the experiments' exposures."""

    def record(self, endpoint: str, subject: str, result: AnsweredList, k: int) -> None: ...

    def close(self) -> None:
        """Write what is still held."""
        ...


class ExperimentRoutes(Protocol):
    """Which arm of the running experiment answers a user (`ExperimentRouter`)."""

    def route(self, user_id: str) -> Arm | None:
        """None: the user is outside any experiment (the champion answers)."""
        ...

    @property
    def active(self) -> ActiveExperiment | None: ...

    @property
    def error(self) -> str | None:
        """Why the running experiment is not applied (None when it is, or none runs)."""
        ...

    def close(self) -> None:
        """Stop watching for a started, ramped or stopped experiment."""
        ...


class RulesInForce(Protocol):
    """The stock and promotions in force (`LiveRules`)."""

    @property
    def current(self) -> ActiveRules: ...

    def close(self) -> None:
        """Stop re-reading the rules."""
        ...


class _Reads(Protocol):
    def read(self, user_id: str) -> LiveSession | None: ...


class _Logs(Protocol):
    def record(self, endpoint: str, subject: str, result: AnsweredList, k: int) -> None: ...

    def flush(self) -> int: ...


@dataclass(frozen=True)
class KeptOpen:
    """A session reader that owns nothing to release, as a `SessionSource`: Feast's
    SessionReader reads through its feature store, whose clients live with the process."""

    reader: _Reads

    def read(self, user_id: str) -> LiveSession | None:
        return self.reader.read(user_id)

    def close(self) -> None:
        return None


@dataclass(frozen=True)
class FlushedOnClose:
    """A request log that writes what it holds when closed (the lake's `RequestLog`:
    `flush`), as a `RequestRecorder`."""

    log: _Logs

    def record(self, endpoint: str, subject: str, result: AnsweredList, k: int) -> None:
        self.log.record(endpoint, subject, result, k)

    def close(self) -> None:
        self.log.flush()
