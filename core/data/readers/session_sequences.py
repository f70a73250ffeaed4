"""Readers of the session-based literature's two published layouts (item ids as ints).

- SR-GNN (`read_srgnn(folder)`): `all_train_seq.txt` = a pickle of the training sessions
  (a list of lists of item ids, click order) and `test.txt` = a pickle of (list of input
  prefixes, list of next items). Pickles run code when loaded naively: these are read by
  an unpickler that refuses every global (no class, no function: only lists, tuples and
  ints can come out), and the result is checked to be exactly that shape.
- sequences (`read_sequences(path)`): SASRec's text file, `user item` or
  `user item item ...` per line, each user's lines in time order; ids are positive ints.

Anything else is a `SessionDataError` naming the file and what is wrong with it.
"""
from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path

from recsys.core.errors import SchemaError

TRAIN_FILE = "all_train_seq.txt"
TEST_FILE = "test.txt"
MAX_ITEM_ID = 2**31 - 1
"""Item ids index arrays: beyond int32 is not an id."""


class SessionDataError(SchemaError):
    """A session or sequence file is not the published layout (or tries to run code)."""


class GlobalRefused(SessionDataError):
    """A pickle names a global (a class or a function): data files never need one."""


class DataOnlyUnpickler(pickle.Unpickler):
    """An unpickler that builds lists, tuples, dicts, strings and numbers, never an object
    of any class: every global a pickle names is refused, so no code runs."""

    source = "(pickle)"

    def find_class(self, module: str, name: str):
        raise GlobalRefused(f"{self.source}: the pickle names the global {module}.{name}; "
                            "session data is lists of ints only, refusing to load it")

    def persistent_load(self, pid):
        raise GlobalRefused(f"{self.source}: the pickle asks for a persistent object; refusing")


def load_data_pickle(path: Path):
    """The plain data held by the pickle at `path` (no global can be loaded)."""
    try:
        payload = path.read_bytes()
    except OSError as exc:
        raise SessionDataError(f"cannot read {path}: {exc}") from exc
    unpickler = DataOnlyUnpickler(io.BytesIO(payload))
    unpickler.source = str(path)
    try:
        value = unpickler.load()
    except SessionDataError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError,
            AttributeError, OverflowError, MemoryError, RecursionError,
            UnicodeDecodeError) as exc:
        raise SessionDataError(f"{path} is not a readable pickle: {type(exc).__name__}: "
                               f"{exc}") from exc
    return value


@dataclass
class SrgnnData:
    """Training sessions and the test cases (prefix -> next item) of an SR-GNN folder."""

    train: list[list[int]]
    test_prefixes: list[list[int]]
    test_targets: list[int]

    @property
    def n_items(self) -> int:
        """The largest item id seen (ids run from 1; 0 is padding)."""
        highest = max((max(s) for s in self.train + self.test_prefixes if s), default=0)
        return max(highest, max(self.test_targets, default=0))


def _item(value, where: str) -> int:
    if type(value) is not int or not 0 < value <= MAX_ITEM_ID:
        raise SessionDataError(f"{where}: expected an item id (an int from 1 to {MAX_ITEM_ID}),"
                               f" got {type(value).__name__} {str(value)[:40]!r}")
    return value


def _sessions(value, where: str) -> list[list[int]]:
    if not isinstance(value, (list, tuple)):
        raise SessionDataError(f"{where}: expected a list of sessions, got "
                               f"{type(value).__name__}")
    out = []
    for number, session in enumerate(value):
        if not isinstance(session, (list, tuple)) or not session:
            raise SessionDataError(f"{where}, session {number}: expected a non-empty list of "
                                   f"item ids, got {type(session).__name__} "
                                   f"{str(session)[:40]!r}")
        out.append([_item(item, f"{where}, session {number}") for item in session])
    return out


def read_srgnn(folder: str | Path) -> SrgnnData:
    """The SR-GNN folder's training sessions and test cases, checked for shape."""
    folder = Path(folder)
    train_path, test_path = folder / TRAIN_FILE, folder / TEST_FILE
    for path in (train_path, test_path):
        if not path.is_file():
            raise SessionDataError(f"{folder} is not an SR-GNN folder: {path.name} is missing")
    train = _sessions(load_data_pickle(train_path), str(train_path))
    test = load_data_pickle(test_path)
    if not isinstance(test, (list, tuple)) or len(test) != 2:
        raise SessionDataError(f"{test_path}: expected (list of prefixes, list of next items),"
                               f" got {type(test).__name__} {str(test)[:60]!r}")
    prefixes = _sessions(test[0], f"{test_path} prefixes")
    if not isinstance(test[1], (list, tuple)):
        raise SessionDataError(f"{test_path}: the next items are not a list")
    targets = [_item(item, f"{test_path} next item {n}") for n, item in enumerate(test[1])]
    if len(prefixes) != len(targets):
        raise SessionDataError(f"{test_path}: {len(prefixes)} prefixes but {len(targets)} next"
                               " items")
    return SrgnnData(train, prefixes, targets)


def read_sequences(path: str | Path) -> dict[int, list[int]]:
    """user -> items in time order, from `user item [item ...]` lines (SASRec's layout)."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise SessionDataError(f"cannot read {path}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise SessionDataError(f"{path} is not UTF-8 text: {exc}") from exc
    users: dict[int, list[int]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 2:
            raise SessionDataError(f"{path}, line {number}: expected 'user item [item ...]', "
                                   f"got {line[:60]!r}")
        ids = []
        for field in fields:
            if not field.isascii() or not field.isdigit() or len(field) > 10:
                raise SessionDataError(f"{path}, line {number}: {field[:20]!r} is not a "
                                       "positive integer id")
            ids.append(_item(int(field), f"{path}, line {number}"))
        users.setdefault(ids[0], []).extend(ids[1:])
    if not users:
        raise SessionDataError(f"{path} holds no sequences")
    return users
