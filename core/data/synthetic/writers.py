"""Write generated events in each supported source layout."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsys.core.data.columns import Columns, EventType
from recsys.core.data.synthetic.catalogue import Catalogue
from recsys.core.data.synthetic.dirt import malformed_lines

C = Columns
FORMATS = ("jsonl", "retailrocket", "rees46", "user_events", "movielens")
TIMES_OF_DAY = np.array(["night"] * 6 + ["morning"] * 6 + ["afternoon"] * 6 + ["evening"] * 6)
DAYS = np.array(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"])
WEATHER = np.array(["sunny", "cloudy", "rain", "snow"])


def write(events: pd.DataFrame, catalogue: Catalogue, fmt: str, out: Path,
          rng: np.random.Generator, malformed: int) -> list[Path]:
    """Write `events` to `out` in layout `fmt`; returns the files written."""
    if fmt == "jsonl":
        return [_write_lines(out, _jsonl_lines(events, rng), malformed, "jsonl", None, rng)]
    if fmt == "rees46":
        return [_write_rees46(events, out, rng, malformed)]
    if fmt == "retailrocket":
        return _write_retailrocket(events, catalogue, out, rng, malformed)
    if fmt == "user_events":
        return _write_user_events(events, catalogue, out, rng, malformed)
    if fmt == "movielens":
        return _write_movielens(events, catalogue, out)
    raise ValueError(f"unknown output format {fmt!r}; supported: {', '.join(FORMATS)}")


def _json_str(values: pd.Series) -> np.ndarray:
    text = values.astype(object)
    quoted = '"' + text.astype(str) + '"'
    return quoted.where(text.notna() & (text != ""), "null").to_numpy()


def _json_num(values: pd.Series) -> np.ndarray:
    numbers = values.astype(float)
    text = numbers.round(4).astype(str)
    return text.where(numbers.notna(), "null").to_numpy()


JSONL_TEMPLATE = (
    '{"event_id":%s,"user_id":%s,"session_id":%s,"event_type":%s,"timestamp":%s,'
    '"context":{"page":{"url":%s,"referrer":%s},"device":{"type":%s},'
    '"weather":{"status":"%s","temperature":%s},'
    '"temporal":{"time_of_day":"%s","day_of_week":"%s"},'
    '"user":{"login_status":%s,"segment":%s},'
    '"campaign":{"utm_source":%s,"utm_campaign":%s}},'
    '"properties":{"product_id":%s,"price":%s,"category":%s,"brand":%s,"rating":%s}}'
)


def _jsonl_lines(events: pd.DataFrame, rng: np.random.Generator) -> list[str]:
    n = len(events)
    ms = events[C.timestamp].astype("datetime64[ms, UTC]").astype("int64").astype(str)
    j = _json_str
    columns = [
        j(events[C.event_id]), j(events[C.user_id]), j(events[C.session_id]),
        j(events[C.event_type]), ms.to_numpy(), j(events[C.page_url]), j(events[C.referrer]),
        j(events[C.device_type]), WEATHER[rng.integers(0, len(WEATHER), n)],
        rng.integers(-5, 32, n).astype(str),
        TIMES_OF_DAY[events[C.timestamp].dt.hour.to_numpy()],
        DAYS[events[C.timestamp].dt.weekday.to_numpy()],
        j(events[C.login_status]), j(events[C.segment]), j(events[C.utm_source]),
        j(events[C.utm_campaign]), j(events[C.item_id]), _json_num(events[C.price]),
        j(events[C.category]), j(events[C.brand]), _json_num(events[C.rating]),
    ]
    return [JSONL_TEMPLATE % row for row in zip(*columns)]


def _write_lines(path: Path, lines: list[str], malformed: int, fmt: str,
                 timestamp_field: int | None, rng: np.random.Generator,
                 header: str | None = None) -> Path:
    bad = malformed_lines(rng, malformed, fmt, lines, timestamp_field)
    if bad:
        lines = list(lines)
        for position, line in zip(np.sort(rng.integers(0, len(lines), len(bad)))[::-1], bad):
            lines.insert(int(position), line)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        if header:
            handle.write(header + "\n")
        handle.write("\n".join(lines))
        handle.write("\n")
    return path


def _csv_lines(frame: pd.DataFrame) -> tuple[str, list[str]]:
    text = frame.to_csv(index=False, lineterminator="\n")
    header, _, body = text.partition("\n")
    return header, body.rstrip("\n").split("\n") if body else []


def _file_path(out: Path, default_name: str) -> Path:
    return out if out.suffix else out / default_name


def _write_rees46(events, out, rng, malformed) -> Path:
    rees_types = {EventType.view.value: "view", EventType.add_to_cart.value: "cart",
                  EventType.remove_from_cart.value: "remove_from_cart",
                  EventType.purchase.value: "purchase"}
    kept = events[events[C.event_type].isin(rees_types) | ~events[C.event_type].isin(
        [e.value for e in EventType])]
    category_id = pd.util.hash_pandas_object(kept[C.category].fillna(""), index=False) % 10**18
    frame = pd.DataFrame({
        "event_time": kept[C.timestamp].dt.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "event_type": kept[C.event_type].map(rees_types).fillna(kept[C.event_type]),
        "product_id": kept[C.item_id], "category_id": category_id.to_numpy(),
        "category_code": kept[C.category], "brand": kept[C.brand], "price": kept[C.price],
        "user_id": kept[C.user_id], "user_session": kept[C.session_id],
    })
    header, lines = _csv_lines(frame)
    return _write_lines(_file_path(out, "events.csv"), lines, malformed, "csv", 0, rng, header)


def _write_retailrocket(events, catalogue: Catalogue, out, rng, malformed) -> list[Path]:
    rr_types = {EventType.view.value: "view", EventType.add_to_cart.value: "addtocart",
                EventType.purchase.value: "transaction"}
    kept = events[events[C.event_type].isin(rr_types) | ~events[C.event_type].isin(
        [e.value for e in EventType])]
    purchase = kept[C.event_type] == EventType.purchase.value
    frame = pd.DataFrame({
        "timestamp": kept[C.timestamp].astype("datetime64[ms, UTC]").astype("int64"),
        "visitorid": kept[C.user_id].str.lstrip("u").astype(int),
        "event": kept[C.event_type].map(rr_types).fillna(kept[C.event_type]),
        "itemid": kept[C.item_id].str.lstrip("p").astype(int),
        # empty but for purchases (None as a 0-d object array: NumPy's types take no bare None)
        "transactionid": np.where(purchase, np.arange(len(kept)), np.array(None)),
    })
    header, lines = _csv_lines(frame)
    folder = out if not out.suffix else out.parent
    paths = [_write_lines(folder / "events.csv", lines, malformed, "csv", 0, rng, header)]
    codes = catalogue.category_codes
    tops = sorted({c.split(".")[0] for c in codes})
    top_id = {t: 1000 + i for i, t in enumerate(tops)}
    tree = pd.DataFrame({
        "categoryid": list(range(len(codes))) + list(top_id.values()),
        "parentid": pd.array([top_id[c.split(".")[0]] for c in codes] + [None] * len(tops),
                             dtype="Int64"),
    })
    tree.to_csv(folder / "category_tree.csv", index=False)
    stamp = int(events[C.timestamp].min().value // 10**6) if len(events) else 0
    n = len(catalogue.item_ids)
    item_num = np.arange(n)
    props = pd.DataFrame({
        "timestamp": stamp,
        "itemid": np.concatenate([item_num, item_num, item_num]),
        "property": ["categoryid"] * n + ["790"] * n + ["available"] * n,
        "value": np.concatenate([catalogue.category.astype(str),
                                 ["n%.3f" % p for p in catalogue.price], np.full(n, "1")]),
    })
    props.to_csv(folder / "item_properties_part1.csv", index=False)
    return paths + [folder / "category_tree.csv", folder / "item_properties_part1.csv"]


def _write_user_events(events, catalogue: Catalogue, out, rng, malformed) -> list[Path]:
    frame = pd.DataFrame({
        "event_id": events[C.event_id], "user_id": events[C.user_id],
        "item_id": events[C.item_id], "event_type": events[C.event_type],
        "timestamp": events[C.timestamp].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "session_id": events[C.session_id], "rating": events[C.rating],
        "price": events[C.price],
    })
    header, lines = _csv_lines(frame)
    folder = out if not out.suffix else out.parent
    path = _write_lines(folder / "user_events.csv", lines, malformed, "csv", 4, rng, header)
    items = catalogue.frame()
    items["name"] = items["brand"].str.title() + " " + items["category"].str.split(".").str[1]
    items["description"] = ("A " + items["category"].str.replace(".", " ") + " by "
                            + items["brand"])
    items["image_url"] = "https://shop.example.com/img/" + items["item_id"] + ".jpg"
    items[["item_id", "name", "category", "brand", "price", "description", "image_url"]].to_csv(
        folder / "items.csv", index=False)
    return [path, folder / "items.csv"]


def _write_movielens(events, catalogue: Catalogue, out) -> list[Path]:
    folder = out if not out.suffix else out.parent
    folder.mkdir(parents=True, exist_ok=True)
    rated = events[events[C.event_type] == EventType.rating.value]
    pd.DataFrame({"userId": rated[C.user_id].str.lstrip("u").astype(int),
                  "movieId": rated[C.item_id].str.lstrip("p").astype(int),
                  "rating": rated[C.rating],
                  "timestamp": rated[C.timestamp].astype("datetime64[s, UTC]").astype("int64"),
                  }).to_csv(folder / "ratings.csv", index=False)
    movies = pd.DataFrame({"movieId": np.arange(len(catalogue.item_ids)),
                           "title": [f"Item {i}" for i in range(len(catalogue.item_ids))],
                           "genres": catalogue.category_codes[catalogue.category]})
    movies.to_csv(folder / "movies.csv", index=False)
    return [folder / "ratings.csv", folder / "movies.csv"]
