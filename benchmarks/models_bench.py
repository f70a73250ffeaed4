"""`recsys bench models`: every model of the zoo on a data set under one protocol.

Protocols:
- ratings-5fold: the folds of Surprise's KFold(5, random_state=0) on explicit ratings,
  RMSE/MAE of each rating model's own `predict_ratings` (rating models only).
- topn-stratified: per-item stratified 75/25 random split (seed 42, as
  microsoft/recommenders' `python_stratified_split(filter_by="item")`), k = 10, training
  items excluded, every held-out rating relevant; P@10, R@10, NDCG@10, MAP.
- temporal: the pipeline's own preprocess (clean, weight, last `holdout_days` as holdout,
  feature tables as of the split) and evaluate (all metrics, bootstrap CI), plus the
  new-item slots (`core/models/new_items.py`) on the items first seen in the holdout.
- session: an event source with sessions (Diginetica, a generated shop...), validated; the
  newest 20% of sessions are the test; next-item HitRate@20 and MRR@20 of the session
  rules (the serving path for unknown visitors) against popularity, as
  `components/evaluate/sessions.py` defines them.
- next-item (`--format srgnn`) and leave-one-out (`--format sequences`): the session
  models on the literature's published files and protocols (`session_bench.py`).
"""
from __future__ import annotations

import functools
import logging
import resource
import time
from pathlib import Path

import pandas as pd

from recsys.benchmarks.datasets import RatingsData, load_movielens
from recsys.benchmarks.machine import write_result
from recsys.benchmarks.protocols import ratings_kfold, stratified_split
from recsys.benchmarks.reference_models import parse_reference_names, run_reference
from recsys.benchmarks.session_bench import DEFAULT_MODELS as SESSION_MODELS
from recsys.benchmarks.session_bench import PUBLISHED as SESSION_PUBLISHED
from recsys.benchmarks.session_bench import SESSION_PROTOCOLS, bench_sessions
from recsys.components.evaluate.evaluate import evaluate_in_detail
from recsys.core.errors import ConfigError
from recsys.core.models.blend import DEFAULT_PARTS as BLEND_PARTS
from recsys.core.models.metrics import paired_bootstrap, per_user_ranking
from recsys.core.models.ratings import RatingRecommender, rating_frame
from recsys.core.models.zoo import MODELS, build_model

log = logging.getLogger(__name__)
PROTOCOLS = ("ratings-5fold", "topn-stratified", "temporal", "session", "next-item",
             "leave-one-out")
SESSION_TEST_SHARE = 0.2
SESSION_WINDOWS = (1, 5)
HISTORICAL_DAYS = 100 * 365
RATING_MODELS = "svd,svdpp,knn_baseline,knn_with_means,rating_blend"
TOPN_MODELS = ("popularity,item_knn,rp3beta,ease,svd,lightfm_warp,lightfm_bpr,content,hybrid,"
               "blend")
DEFAULT_PARAMS = {"popularity": {"popularity_half_life_days": 0.0},
                  "hybrid": {"cf": "ease", "validation": "random"},
                  "blend": {"validation": "random", "step": 0.05}}
"""Random-split protocols have no notion of 'recent': plain popularity there, and the
hybrid and the blend validate their weights on a random split too (the hybrid with EASE as
its collaborative part; the blend on a 0.05 grid, chosen on MovieLens-small)."""
TUNE_BUDGET_SECONDS = 900.0
PUBLISHED = {
    "ratings-5fold": {"source": "scikit-surprise README, MovieLens-100k, 5-fold RMSE",
                      "rows": {"SVD": 0.934, "SVD++": 0.919, "KNNBaseline": 0.931,
                               "BaselineOnly": 0.944}},
    "topn-stratified": {"source": "microsoft/recommenders benchmark, MovieLens-100k, "
                                  "python_stratified_split(filter_by='item'), k=10",
                        "rows": {"BiVAE": {"ndcg_at_10": 0.475, "precision_at_10": 0.412,
                                           "recall_at_10": 0.219, "map": 0.146},
                                 "BPR": {"ndcg_at_10": 0.442, "precision_at_10": 0.388,
                                         "recall_at_10": 0.213, "map": 0.132}}},
}


def peak_rss_gib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024, 2)


def load(path: str, fmt: str) -> RatingsData:
    if fmt == "movielens":
        return load_movielens(path)
    raise ConfigError(f"--format {fmt!r} is for rating protocols; use 'movielens' (event "
                      f"layouts go through --protocol temporal)")


def bench_ratings(data: RatingsData, models: list[str]) -> list[dict]:
    ratings, _ = rating_frame(data.interactions, "explicit", "bench ratings-5fold")
    rows = []
    for name in models:
        if not issubclass(MODELS[name], RatingRecommender):
            rows.append({"model": name, "skipped": "predicts no ratings"})
            continue
        params = {**DEFAULT_PARAMS.get(name, {}), "rating_source": "explicit"}
        result = ratings_kfold(ratings, functools.partial(build_model, name, **params))
        log.info("ratings-5fold %s: RMSE %.4f MAE %.4f", name, result["rmse"], result["mae"])
        rows.append({"model": name, **result})
    return rows


def bench_topn(data: RatingsData, models: list[str], k: int = 10,
               references: list[str] = (), reference_params: dict | None = None,
               tune: int = 0, tuned: dict[str, dict] | None = None) -> list[dict]:
    """The zoo's models, then the published reference models (own environment), all on
    one split and scored by one metric implementation. With `tune` > 0, each model with a
    search space first tries up to that many parameter sets, judged by NDCG@10 on a random
    20% of each user's training ratings (never the test split), and the best is refitted on
    the whole training split; a blend then combines the tuned parts. `tuned`: parameters
    tuned earlier on another data set (`tuned_params`), used as they are. Each reference row
    carries a paired bootstrap (same users) of the best zoo model's NDCG@10 minus the
    reference's."""
    train, test = stratified_split(data.interactions, 0.75, "item", 42)
    users = pd.unique(test["user_id"])
    rows, ndcg_by_user, tuned = [], {}, dict(tuned or {})
    for name in models:
        if data.items is None and MODELS[name].needs_item_features:
            log.warning("topn-stratified %s skipped: %s has no item metadata (movies.csv or "
                        "u.item)", name, data.name)
            rows.append({"model": name, "skipped": "needs item metadata; the data set has "
                                                   "none (movies.csv or u.item)"})
            continue
        params, tuning = topn_params(name, train, data.items, tune, tuned)
        started = time.perf_counter()
        model = build_model(name, **params).fit(train, data.items)
        fitted = time.perf_counter()
        recs = model.recommend(users, k=k)
        predicted = time.perf_counter()
        per_user = per_user_ranking(recs, test, k)
        ndcg_by_user[name] = per_user["ndcg"]
        rows.append({**topn_row(name, per_user, fitted - started, predicted - fitted,
                                len(users)), "params": params, **tuning})
    scored = [row for row in rows if "ndcg_at_10" in row]
    best = max(scored, key=lambda row: row["ndcg_at_10"])["model"] if scored else None
    for name in references:
        run = run_reference(name, train, users, k, (reference_params or {}).get(name))
        per_user = per_user_ranking(run.recommendations, test, k)
        row = topn_row(f"reference_{name}", per_user, run.fit_seconds, run.predict_seconds,
                       len(users))
        row.update(reference=run.library, params=run.params)
        if best:
            row["best_zoo_minus_reference_ndcg_at_10"] = {
                "model": best, **paired_bootstrap(ndcg_by_user[best], per_user["ndcg"])}
        rows.append(row)
    return rows


def topn_params(name: str, train: pd.DataFrame, items: pd.DataFrame | None, tune: int,
                tuned: dict[str, dict]) -> tuple[dict, dict]:
    """(parameters, tuning record) of one model: the defaults, or the search's best; a
    blend's parts take the parameters tuned for them earlier in the run."""
    from recsys.components.train.search import SearchConfig, search

    params = dict(DEFAULT_PARAMS.get(name, {}))
    if name == "blend" and tuned:
        params["parts"] = [[part, tuned.get(part, {})] for part, _ in BLEND_PARTS]
    if tune <= 0 and name in tuned:
        return {**params, **tuned[name]}, {"tuning": {"params_from_earlier_run": True}}
    if tune <= 0 or not MODELS[name].search_space:
        return params, {}
    started = time.perf_counter()
    result = search(name, params, train, SearchConfig(
        trials=tune, budget_seconds=TUNE_BUDGET_SECONDS, validation="random"), items)
    best = max(result.trials, key=lambda t: t.metrics["ndcg_at_10"])
    tuned[name] = result.best_params
    log.info("topn-stratified %s tuned: %s (validation NDCG@10 %.4f, %d trials, %.0fs)",
             name, result.best_params, best.metrics["ndcg_at_10"], len(result.trials),
             time.perf_counter() - started)
    return result.best_params, {"tuning": {
        "trials": len(result.trials), "validation_ndcg_at_10": best.metrics["ndcg_at_10"],
        "seconds": time.perf_counter() - started,
        "split": "random 20% of each user's training ratings"}}


def tuned_params(path: str) -> tuple[dict[str, dict], str]:
    """The parameters each model was tuned to in an earlier `--tune` run (its result file),
    and that run's data set: to judge on one data set what was tuned on another."""
    import json

    try:
        figures = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--params-from {path}: not a readable result file ({exc})") from exc
    figures = figures.get("figures", figures)
    if figures.get("protocol") != "topn-stratified":
        raise ConfigError(f"--params-from {path}: not a topn-stratified result")
    params = {row["model"]: row["params"] for row in figures.get("rows", [])
              if row.get("tuning", {}).get("trials") and isinstance(row.get("params"), dict)}
    if not params:
        raise ConfigError(f"--params-from {path}: no tuned model in it (run with --tune)")
    return params, str(figures.get("dataset"))


def topn_row(name: str, per_user: pd.DataFrame, fit_seconds: float, predict_seconds: float,
             n_users: int) -> dict:
    table = per_user.mean()
    row = {"precision_at_10": table["precision"], "recall_at_10": table["recall"],
           "ndcg_at_10": table["ndcg"], "map": table["map_full"], "map_at_10": table["map"],
           "fit_seconds": fit_seconds, "predict_seconds": predict_seconds,
           "users_per_second": n_users / max(predict_seconds, 1e-9)}
    log.info("topn-stratified %s: NDCG@10 %.4f P@10 %.4f R@10 %.4f MAP %.4f (fit %.1fs)",
             name, row["ndcg_at_10"], row["precision_at_10"], row["recall_at_10"],
             row["map"], fit_seconds)
    return {"model": name, **{key: float(value) for key, value in row.items()}}


def bench_temporal(source: str, fmt: str, models: list[str], holdout_days: float) -> tuple[
        list[dict], dict]:
    """Preprocess in this process, then fit and evaluate every model in a fresh child
    process, so that its peak RSS is the models' own (not the raw events')."""
    import pickle
    import tempfile
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from recsys.components.preprocess.config import PreprocessConfig
    from recsys.components.preprocess.preprocess import preprocess
    from recsys.components.train.train import catalogue_metadata
    from recsys.components.validate.rules import ValidationConfig
    from recsys.components.validate.validate import validate_events
    from recsys.core.data.readers.detect import read_source

    events = read_source(Path(source), fmt or None).events
    clean = validate_events(events, ValidationConfig(max_age_days=HISTORICAL_DAYS)).clean
    data = preprocess(clean, PreprocessConfig(holdout_days=holdout_days, lookback_days=None))
    catalogue = catalogue_metadata(data)
    if fmt == "movielens":  # the item table has every genre and the title, not just one genre
        items = load_movielens(source).items
        if items is not None:
            catalogue = items[items["item_id"].isin(set(catalogue["item_id"].astype(str)))]
    del events, clean
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "processed.pkl"
        with open(path, "wb") as handle:
            pickle.dump((data.train, data.holdout, data.item_features, data.user_features,
                         catalogue), handle, protocol=pickle.HIGHEST_PROTOCOL)
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            rows, peak = pool.submit(fit_and_evaluate, str(path), models).result()
    summary = {key: data.summary[key] for key in ("train_interactions", "holdout_interactions",
                                                  "train_users", "train_items", "split_time")}
    return rows, {**summary, "total_fit_seconds": sum(r["fit_seconds"] for r in rows),
                  "models_process_peak_rss_gib": peak}


def bench_session(source: str, fmt: str) -> tuple[list[dict], dict]:
    """Popularity, then the session rules at each window, on one time split of sessions."""
    from recsys.components.evaluate.sessions import next_item_metrics, split_sessions_by_time
    from recsys.components.preprocess.clean import add_weights
    from recsys.components.preprocess.config import PreprocessConfig
    from recsys.components.validate.rules import ValidationConfig
    from recsys.components.validate.validate import validate_events
    from recsys.core.data.readers.detect import read_source
    from recsys.core.models.session_rules import fit_session_rules

    events = read_source(Path(source), fmt or None).events
    # public session sets are historical (Diginetica is from 2016): no age bound here
    clean = validate_events(events, ValidationConfig(max_age_days=HISTORICAL_DAYS)).clean
    clean = add_weights(clean[clean["item_id"].notna()], PreprocessConfig().weights)
    train, test = split_sessions_by_time(clean, SESSION_TEST_SHARE)
    rows = []
    for window in (None, *SESSION_WINDOWS):
        started = time.perf_counter()
        model = build_model("popularity", popularity_half_life_days=0.0).fit(train)
        if window is not None:
            fit_session_rules(model, train, window=window)
        fitted = time.perf_counter()
        metrics = next_item_metrics(model, test)
        seconds = time.perf_counter() - fitted
        name = "popularity" if window is None else f"session_rules_window_{window}"
        log.info("session %s: HitRate@20 %.4f MRR@20 %.4f", name,
                 metrics["session_hit_rate_at_20"], metrics["session_mrr_at_20"])
        rows.append({"model": name, "fit_seconds": fitted - started,
                     "ms_per_session": 1000 * seconds / max(metrics["session_cases"], 1),
                     **metrics})
    summary = {"events": len(clean), "train_sessions": int(train["session_id"].nunique()),
               "test_sessions": int(test["session_id"].nunique()),
               "test_share": SESSION_TEST_SHARE}
    return rows, summary


def fit_and_evaluate(path: str, models: list[str]) -> tuple[list[dict], float]:
    """Fit each model on the pickled training data and evaluate it on the holdout."""
    import pickle

    from recsys.core.models.new_items import attach_new_items, new_item_metrics
    from recsys.core.progress import configure_logging

    configure_logging()
    with open(path, "rb") as handle:
        train, holdout, item_features, user_features, catalogue = pickle.load(handle)
    rows = []
    for name in models:
        started = time.perf_counter()
        model = build_model(name).fit(train, item_features, user_features)
        seconds = time.perf_counter() - started
        metrics = evaluate_in_detail(model, holdout).metrics
        attach_new_items(model, catalogue)  # items first seen in the holdout, by content
        metrics.update(new_item_metrics(model, holdout))
        log.info("temporal %s: NDCG@10 %.4f (fit %.1fs)", name, metrics["ndcg_at_10"], seconds)
        rows.append({"model": name, "fit_seconds": seconds, **metrics})
        del model
    return rows, peak_rss_gib()


def bench_models(source: str, fmt: str, protocol: str, models: str | None = None,
                 name: str | None = None, holdout_days: float = 7.0,
                 reference: str | None = None, reference_params: dict | None = None,
                 tune: int = 0, params_from: str | None = None) -> dict:
    if protocol not in PROTOCOLS:
        raise ConfigError(f"--protocol must be one of {PROTOCOLS}, got {protocol!r}")
    references = parse_reference_names(reference)
    session_protocol = protocol in SESSION_PROTOCOLS
    if (tune and not session_protocol or params_from) and protocol != "topn-stratified":
        raise ConfigError("--tune and --params-from apply to --protocol topn-stratified "
                          "(--tune also to next-item and leave-one-out)")
    if tune and params_from:
        raise ConfigError("--tune and --params-from exclude each other")
    tuned, tuned_on = tuned_params(params_from) if params_from else ({}, None)
    if references and protocol != "topn-stratified":
        raise ConfigError("--reference models run under --protocol topn-stratified only")
    reference_params = reference_params or {}
    if not (isinstance(reference_params, dict)
            and all(isinstance(v, dict) for v in reference_params.values())):
        raise ConfigError(f"--reference-params must map model names to parameter objects, "
                          f"got {reference_params!r}")
    stray = sorted(set(reference_params) - set(references))
    if stray:
        raise ConfigError(f"--reference-params names {stray}, which --reference does not run")
    default = SESSION_MODELS if session_protocol else RATING_MODELS \
        if protocol == "ratings-5fold" else TOPN_MODELS
    names = [m.strip() for m in (models or default).split(",") if m.strip()]
    unknown = [m for m in names if m not in MODELS and not session_protocol]
    if unknown:
        raise ConfigError(f"unknown model(s) {unknown}; known: {', '.join(MODELS)}")
    started = time.perf_counter()
    extra: dict = {}
    if session_protocol:
        rows, extra = bench_sessions(source, fmt, protocol, names, tune)
        dataset = Path(source).stem if Path(source).is_file() else Path(source).name
    elif protocol == "temporal":
        rows, extra = bench_temporal(source, fmt, names, holdout_days)
        dataset = Path(source).stem
    elif protocol == "session":
        rows, extra = bench_session(source, fmt)
        dataset = Path(source).stem
    else:
        data = load(source, fmt)
        dataset = data.name
        rows = bench_ratings(data, names) if protocol == "ratings-5fold" \
            else bench_topn(data, names, references=references,
                            reference_params=reference_params, tune=tune, tuned=tuned)
        if tuned_on:
            extra.update(params_from=str(params_from), params_tuned_on=tuned_on)
    label = name or f"{dataset}-{protocol}"
    figures = {"dataset": dataset, "source": str(source), "format": fmt, "protocol": protocol,
               "rows": rows, "published": PUBLISHED.get(protocol, SESSION_PUBLISHED.get(
                   protocol)), **extra,
               "wall_seconds": time.perf_counter() - started, "peak_rss_gib": peak_rss_gib()}
    path = write_result(f"models-{label}", figures)
    print(format_table(rows))
    log.info("wrote %s", path)
    return figures


def format_table(rows: list[dict]) -> str:
    columns = ["model", "rmse", "mae", "predict_seconds", "ndcg_at_10", "precision_at_10",
               "recall_at_10", "map", "coverage_at_10", "diversity_at_10", "novelty_at_10",
               "fit_seconds", "users_per_second", "session_hit_rate_at_20",
               "session_mrr_at_20", "session_cases", "ms_per_session", "precision_at_20",
               "mrr_at_20", "mrr_at_10", "hit_at_10", "hit_at_20", "ndcg_at_20",
               "ms_per_prediction", "skipped", "reference"]
    frame = pd.DataFrame(rows)
    return frame[[c for c in columns if c in frame.columns]].round(4).to_string(index=False)
