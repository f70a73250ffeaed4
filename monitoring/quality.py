"""Quality of what was served: Evidently's recsys metrics on served lists that later
interactions can judge.

For each user's latest served `recommend` list in the window, the relevant items are those the
user interacted with (any event type) within `horizon` after the list was served. Users with
no later interaction are left out (nothing to judge them by). Evidently's ranking task takes
one row per (user, item): served items carry their rank, relevant items that were not served
get ranks after k, and `target` marks relevance.
"""
from __future__ import annotations

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.core.datasets import Recsys
from evidently.metrics import MAP, NDCG, HitRate, PrecisionTopK, RecallTopK

from recsys.core.data.columns import Columns

C = Columns
METRICS = {"precision": PrecisionTopK, "recall": RecallTopK, "ndcg": NDCG, "map": MAP,
           "hit_rate": HitRate}


def judged_lists(log: pd.DataFrame, events: pd.DataFrame, horizon: pd.Timedelta) -> pd.DataFrame:
    """Rows (user_id, item_id, rank, target) for the users whose served list can be judged."""
    served = log[(log["endpoint"] == "recommend") & (log["item_ids"].str.len() > 0)]
    served = served.sort_values("timestamp").drop_duplicates("user_id", keep="last")
    later = events[[C.user_id, C.item_id, C.timestamp]].astype({C.user_id: str, C.item_id: str})
    later = later.merge(served[["user_id", "timestamp"]].rename(
        columns={"timestamp": "served_at"}), on=C.user_id)
    later = later[(later[C.timestamp] > later["served_at"])
                  & (later[C.timestamp] <= later["served_at"] + horizon)]
    relevant = later.drop_duplicates([C.user_id, C.item_id])[[C.user_id, C.item_id]]
    served = served[served["user_id"].isin(relevant[C.user_id])]
    if served.empty:
        return pd.DataFrame(columns=[C.user_id, C.item_id, "rank", "target"])
    ranked = served[["user_id", "item_ids"]].explode("item_ids").rename(
        columns={"item_ids": C.item_id})
    ranked[C.item_id] = ranked[C.item_id].astype(str)
    ranked["rank"] = ranked.groupby(C.user_id).cumcount() + 1
    relevant = relevant.assign(target=1)
    rows = ranked.merge(relevant, on=[C.user_id, C.item_id], how="outer")
    rows["target"] = rows["target"].fillna(0).astype(int)
    unserved = rows["rank"].isna()
    list_length = ranked.groupby(C.user_id)["rank"].max()
    rows.loc[unserved, "rank"] = rows.loc[unserved, C.user_id].map(list_length).fillna(0) \
        + rows[unserved].groupby(C.user_id).cumcount() + 1
    rows["rank"] = rows["rank"].astype(int)
    return rows.sort_values([C.user_id, "rank"]).reset_index(drop=True)


def served_quality(log: pd.DataFrame, events: pd.DataFrame, k: int = 10,
                   horizon: pd.Timedelta = pd.Timedelta(days=1)):
    """(summary, Evidently snapshot or None). The summary has precision/recall/ndcg/map/
    hit_rate at k and how many lists were judged."""
    rows = judged_lists(log, events, horizon)
    judged = int(rows[C.user_id].nunique()) if len(rows) else 0
    if judged == 0:
        return {"status": "not computed: no served list has later interactions yet",
                "judged_lists": 0}, None
    definition = DataDefinition(
        ranking=[Recsys(user_id=C.user_id, item_id=C.item_id, target="target",
                        prediction="rank", recommendations_type="rank")],
        numerical_columns=["rank", "target"])
    report = Report([metric(k=k) for metric in METRICS.values()])
    snapshot = report.run(Dataset.from_pandas(rows, data_definition=definition), None)
    values = [entry["value"]["value"] for entry in snapshot.dict()["metrics"]]
    # each value is a curve over cut-offs 1..; the k-th entry is the figure at k
    figures = {f"{name}_at_{k}": round(float(list(curve.values())[k - 1]), 6)
               for name, curve in zip(METRICS, values)}
    return {"status": "computed", "judged_lists": judged, "k": k,
            "horizon_hours": horizon / pd.Timedelta(hours=1), **figures}, snapshot
