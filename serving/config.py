"""Typed configuration of the recommendation service."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ServiceConfig(BaseModel):
    """What the service loads and how it answers."""

    model_config = ConfigDict(extra="forbid")

    model_uri: str | None = None
    """A registered model URI or an exported model folder; None means
    `models:/<registered model>@champion`."""
    model_sha256: str | None = None
    """The SHA-256 an exported `model_uri` folder must have (`recsys registry export`
    prints it); the folder is refused when its files differ."""
    model_version: str | None = None
    """The registry version an exported folder was made from, reported in answers."""
    max_k: int = Field(100, gt=0)
    """Largest number of items a client may ask for."""
    default_k: int = Field(10, gt=0)
    """Items returned when the client does not say."""
    candidates: int = Field(100, gt=0)
    """Candidates scored by the model before business rules and re-ranking."""
    max_exclude: int = Field(500, ge=0)
    """Largest `exclude` list a client may send."""
    recent_boost: float | None = Field(None, ge=0)
    """Known users: weight of the live session's scores (the session model's, else the
    rules') added to the long-term model's scaled scores. None: the weight tuned offline
    and kept with the model (`core/models/session_blend.py`), else 0.3."""
    category_boost: float = Field(0.2, ge=0)
    """Re-rank weight of matching the session's current top category."""
    session_path: bool = True
    """Answer visitors the model does not know (anonymous, new) from their live session's
    recent items (`path: session`), not popularity."""
    session_scorer: Literal["model", "rules"] = "model"
    """What scores a live session: the champion's next-item session model (`model`; its
    session rules when it carries none) or always its session rules (`rules`: a switch back
    to the cheaper, older scorer without retraining)."""
    max_promoted_share: float = Field(0.3, ge=0, le=1)
    """Share of a list's slots promotions may take from organic items (pins and boosts)."""
    rules_refresh_seconds: float = Field(30.0, ge=0)
    """How often stock and promotions are re-read from the lake (0: only at start)."""
    new_items_share: float = Field(0.2, ge=0, le=1)
    """Share of a list's slots (the last ones) for items newer than the model's training
    data, chosen by content similarity to the user's items and session (0: none)."""
    session_popularity_weight: float = Field(0.05, ge=0)
    """Weight of popularity blended into session scores (orders what the rules miss)."""
    cache_ttl_seconds: int = Field(3600, ge=0)
    """Lifetime of a cached list in Redis (0 disables the cache)."""
    cache_local_entries: int = Field(10_000, ge=0)
    """Lists also kept in the serving process (least recently used out first; same TTL): a
    hit there costs no Redis round trip. 0 keeps them in Redis only."""
    redis_timeout_seconds: float = Field(0.05, gt=0)
    """Longest wait for the cache and online-store Redis on a request (connect, each reply;
    one attempt): past it the request degrades instead of waiting
    (core/online/fail_fast_redis.py)."""
    redis_breaker_failures: int = Field(3, gt=0)
    """Consecutive Redis timeouts or connection errors after which requests skip that Redis
    (cache or online store) for `redis_breaker_cool_down_seconds`."""
    redis_breaker_cool_down_seconds: float = Field(5.0, gt=0)
    """How long an unreachable Redis is skipped before one trial command checks it again."""
    watch_seconds: float = Field(30.0, ge=0)
    """How often the champion alias is checked for a new version (0: never)."""
    warm_users: int = Field(10_000, ge=0)
    """Before a newly promoted version answers (and before a start is ready), the lists of
    up to this many recently active users are computed into the cache under the new
    version (0: no warm lists; every path is still called once)."""
    warm_seconds: float = Field(15.0, ge=0)
    """Longest the warming of a version may take; the users left are answered cold."""
    experiments: bool = True
    """Apply the registry's running online experiment (a registry-served champion), or the
    exported one of an experiment artifact."""
    experiment_folder: str | None = None
    """An exported experiment (`recsys experiment export`): its definition and variants are
    read from here, not from the registry (set by the runtime from the artifact)."""
    experiment_variants: dict[str, str] = {}
    """SHA-256 of each variant's model folder in `experiment_folder`, by version."""
    experiment_arm: str | None = None
    """This server is one arm of the exported experiment (a variant label): it answers the
    users assigned to it and forwards the others (`experiments/seldon.py`)."""
    experiment_arm_models: dict[str, str] = {}
    """Every arm's Seldon Model name, by variant label."""
    experiment_mesh_url: str | None = None
    """Where other arms are reached (the Seldon mesh; the Model name goes in the
    `seldon-model` header)."""
    experiment_arm_urls: dict[str, str] = {}
    """Base URL of each arm by label, instead of the mesh (no Seldon: tests, plain pods)."""
    experiment_forward_timeout_seconds: float = Field(2.0, gt=0)
    """Longest a forwarded request may take before it is answered 503."""
    experiment_watch_seconds: float = Field(30.0, gt=0)
    """How often the running experiment is read: a start, ramp or stop applies within it."""
    log_requests: bool = True
    """Write served lists to the lake (serving/requests/) for prediction-drift monitoring;
    an experiment's exposures are written whatever this says."""
    log_batch_size: int = Field(1000, gt=0)
    """Rows per request-log file."""
    log_flush_seconds: float = Field(60.0, gt=0)
    """Longest a served list waits in memory before its batch is written."""
