"""Stock and promotions in force, refreshed from the lake without a restart.

Every `refresh_seconds` a background thread lists the rule logs (`core/online/business_rules.py`);
when a file changed it reads them again, and in any case it re-evaluates what is in force
now (a promotion that starts at 10:00 applies within one period of 10:00). A lake that
cannot be read keeps the last rules in force, counted as degraded, and is retried on the
next tick: requests never wait for the lake.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import pandas as pd

from recsys.core.online.business_rules import (
    LEGACY_UNAVAILABLE,
    PROMOTIONS_PREFIX,
    STOCK_PREFIX,
    ActiveRules,
    RuleLogs,
    read_rule_logs,
)
from recsys.serving.polling import wait_next

if TYPE_CHECKING:
    from recsys.core.data.lake import Lake

log = logging.getLogger(__name__)
NO_RULES = ActiveRules()


class LiveRules:
    def __init__(self, lake: Lake, refresh_seconds: float = 30.0,
                 on_error: Callable[[Exception], object] | None = None) -> None:
        self.lake = lake
        self.refresh_seconds = refresh_seconds
        self.on_error = on_error  # called with the exception (the service counts it)
        self.current: ActiveRules = NO_RULES
        self._logs: RuleLogs | None = None
        self._seen: tuple[tuple[str, int, str], ...] | None = None
        """(key, size, version) of every rules file last read (`Lake.describe`)."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self, now: pd.Timestamp | None = None) -> ActiveRules:
        """Read the logs again if a file changed, then set the rules in force at `now`."""
        try:
            seen = tuple(self.lake.describe(STOCK_PREFIX) + self.lake.describe(PROMOTIONS_PREFIX)
                         + self.lake.describe(LEGACY_UNAVAILABLE))
            if seen != self._seen or self._logs is None:
                self._logs = read_rule_logs(self.lake)
                self._seen = seen
        except Exception as exc:
            log.warning("business rules not refreshed (the last ones stay in force): %s", exc)
            if self.on_error is not None:
                self.on_error(exc)
            return self.current
        rules = self._logs.at(now or pd.Timestamp.now(tz="UTC"))
        if rules.version != self.current.version:
            log.info("business rules in force: %d unavailable items, %d promotions",
                     len(rules.unavailable), len(rules.promotions))
        self.current = rules
        return rules

    def watch(self) -> None:
        if self._thread is None and self.refresh_seconds > 0:
            self._thread = threading.Thread(target=self._loop, name="business-rules",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Stop the refresh thread (`stop`); the rules in force stay."""
        self.stop()

    def _loop(self) -> None:
        while not wait_next(self._stop, self.refresh_seconds):
            self.refresh()
