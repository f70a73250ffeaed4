"""`recsys bench models --protocol next-item | leave-one-out`: the session models
(`core/models/session_knn.py`) under the literature's protocols
(`benchmarks/session_protocols.py`).

- next-item, `--format srgnn`: fit on every training session, judge every test prefix of
  test.txt, ranking all items.
- leave-one-out, `--format sequences`: SASRec's split of each user's items, all items
  ranked (not SASRec's 100 sampled negatives).

Parameters: the best of a coordinate search starting from the models' defaults (each
parameter in turn over its candidates, the others held, a candidate equal to the current
value skipped; at most N fits per model: `--tune N`, `DEFAULT_TUNE` fits when not given,
`--tune 0` the class defaults as they are) judged by MRR@20 (next-item) or NDCG@10
(leave-one-out) on a validation split that never touches the test cases: next-item holds
out the newest 10% of training sessions (the file's order) and fits on the rest,
leave-one-out uses each user's second-to-last item. The ensemble's members take the
parameters tuned for them earlier in the run (without their repeat boost) and its search
tunes its weights and repeat boost.
"""
from __future__ import annotations

import logging
import time

from recsys.benchmarks.session_protocols import (
    evenly,
    judge,
    leave_one_out,
    session_cases,
)
from recsys.core.data.readers.session_sequences import read_sequences, read_srgnn
from recsys.core.errors import ConfigError
from recsys.core.models.session_ensemble import MEMBERS
from recsys.core.models.session_zoo import SESSION_MODELS, build_session_model

log = logging.getLogger(__name__)
SESSION_PROTOCOLS = {"next-item": "srgnn", "leave-one-out": "sequences"}
VALIDATION_SHARE = 0.1
VALIDATION_CASES = 3000
TUNE_METRIC = {"next-item": "mrr_at_20", "leave-one-out": "ndcg_at_10"}
DEFAULT_TUNE = {"next-item": 16, "leave-one-out": 16}
"""Fits per model when `--tune` is not given: about 4 minutes for the default models on
RetailRocket's 126k sessions on 2 cores (docs/models.md)."""
SLOW_MODELS = ("slist", "gru4rec", "sasrec")
"""Run only when named (`--models slist`, `--models gru4rec,sasrec`): slist's fit solves
an 8,000-item system (30-45 s on 2 cores, 2.9 GB); a neural model's fit takes 3-10
minutes on RetailRocket, too long to tune 16 times within the default set's 30 minutes;
all three rank below the kNN models on RetailRocket."""
DEFAULT_MODELS = ",".join(m for m in SESSION_MODELS if m not in SLOW_MODELS)
PUBLISHED = {
    "next-item": {
        "source": "as quoted in issue 47 (RetailRocket in the SR-GNN format is not in the "
                  "SR-GNN paper; MTD and later papers report these rows)",
        "rows": {"SR-GNN": {"precision_at_20": 0.503, "mrr_at_20": 0.265},
                 "GCE-GNN-era models": {"precision_at_20": "0.52-0.54"},
                 "sequential rules, last 3 items (a floor)": {"precision_at_20": 0.496,
                                                              "mrr_at_20": 0.234}}},
    "leave-one-out": {
        "source": "SASRec (Kang & McAuley 2018) reports Video Games against 100 sampled "
                  "negatives, not against all items: not comparable with the rows here",
        "rows": {}},
}


def check_format(protocol: str, fmt: str) -> None:
    if SESSION_PROTOCOLS[protocol] != fmt:
        raise ConfigError(f"--protocol {protocol} reads --format "
                          f"{SESSION_PROTOCOLS[protocol]}, got {fmt!r}")


def bench_sessions(source: str, fmt: str, protocol: str, names: list[str],
                   tune: int | None = None) -> tuple[list[dict], dict]:
    """One row per model; `tune`: fits per model of the validation search (None: the
    protocol's `DEFAULT_TUNE`, 0: the class defaults)."""
    check_format(protocol, fmt)
    tune = DEFAULT_TUNE[protocol] if tune is None else tune
    unknown = [m for m in names if m not in SESSION_MODELS]
    if unknown:
        raise ConfigError(f"{protocol}: unknown session model(s) {unknown}; known: "
                          f"{', '.join(SESSION_MODELS)}")
    if protocol == "next-item":
        data = read_srgnn(source)
        n_items, train = data.n_items, data.train
        cut = int(len(train) * (1 - VALIDATION_SHARE))
        fit_part, valid = train[:cut], evenly(session_cases(train[cut:]), VALIDATION_CASES)
        test = (data.test_prefixes, data.test_targets)
        summary = {"train_sessions": len(train), "test_cases": len(data.test_targets),
                   "items": n_items, "validation": f"newest {VALIDATION_SHARE:.0%} of "
                   f"training sessions, {len(valid[1])} cases"}
    else:
        users = read_sequences(source)
        split = leave_one_out(users)
        n_items = max(max(items) for items in users.values())
        train = fit_part = split.train
        valid = evenly((split.valid_prefixes, split.valid_targets), VALIDATION_CASES)
        test = (split.test_prefixes, split.test_targets)
        summary = {"users": len(users), "test_users": len(split.test_targets),
                   "items": n_items, "ranking": "all items, nothing excluded but padding",
                   "validation": f"second-to-last item, {len(valid[1])} users"}
    rows, chosen = [], {}
    for name in names:
        base = {"member_params": {m: member_params(chosen[m]) for m in MEMBERS
                                  if m in chosen}} if name == "ensemble" and chosen else {}
        params, tuning = (base, {}) if tune <= 0 else tune_model(
            name, fit_part, n_items, valid, protocol, tune, base)
        chosen[name] = params
        started = time.perf_counter()
        model = build_session_model(name, **params).fit(train, n_items)
        fit_seconds = time.perf_counter() - started
        metrics = judge(model, *test, protocol)
        log.info("%s %s: %s (fit %.1fs)", protocol, name,
                 {k: round(v, 4) for k, v in metrics.items()}, fit_seconds)
        rows.append({"model": name, **metrics, "fit_seconds": fit_seconds,
                     "params": model.params(), **tuning})
    return rows, summary


def member_params(params: dict) -> dict:
    """A model's chosen parameters as an ensemble member: the ensemble boosts repeats."""
    return {key: value for key, value in params.items() if key != "repeat_boost"}


def tune_model(name: str, train, n_items: int, valid, protocol: str, budget: int,
               base: dict | None = None) -> tuple[dict, dict]:
    """Coordinate search over the model's search space on the validation cases, from
    `base` (parameters given, the others the class defaults)."""
    metric = TUNE_METRIC[protocol]
    started = time.perf_counter()
    best_params: dict = dict(base or {})
    best = judge(build_session_model(name, **best_params).fit(train, n_items), *valid,
                 protocol)[metric]
    fits = 1
    for key, candidates in SESSION_MODELS[name].search_space.items():
        current = build_session_model(name, **best_params).params()[key]
        for value in candidates:
            if fits >= budget:
                break
            if value == current:
                continue
            trial = {**best_params, key: value}
            score = judge(build_session_model(name, **trial).fit(train, n_items), *valid,
                          protocol)[metric]
            fits += 1
            if score > best:
                best, best_params = score, trial
    log.info("%s %s tuned: %s (validation %s %.4f, %d fits)", protocol, name, best_params,
             metric, best, fits)
    return best_params, {"tuning": {"fits": fits, f"validation_{metric}": best,
                                    "seconds": time.perf_counter() - started}}
