"""The SR-GNN pickle reader and the sequences reader: the published layouts load, a pickle
that would run code is refused by name, and hostile input never gives anything but a
`SessionDataError`. Property tests are bounded and derandomized."""
import os
import pickle

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.core.data.readers.session_sequences import (
    TEST_FILE,
    TRAIN_FILE,
    GlobalRefused,
    SessionDataError,
    read_sequences,
    read_srgnn,
)

FAST = settings(max_examples=60, derandomize=True, deadline=None,
                suppress_health_check=list(HealthCheck))


def write_srgnn(folder, train, test, protocol=3):
    (folder / TRAIN_FILE).write_bytes(pickle.dumps(train, protocol=protocol))
    (folder / TEST_FILE).write_bytes(pickle.dumps(test, protocol=protocol))
    return folder


def test_srgnn_folder_reads_sessions_and_cases(tmp_path):
    data = read_srgnn(write_srgnn(tmp_path, [[1, 2, 3], [2, 4]], ([[1], [1, 2]], [2, 3])))
    assert data.train == [[1, 2, 3], [2, 4]]
    assert data.test_prefixes == [[1], [1, 2]] and data.test_targets == [2, 3]
    assert data.n_items == 4


class RunsCode:
    def __reduce__(self):
        return os.system, ("touch /tmp/recsys-pwned-by-pickle",)


def test_pickle_that_would_run_code_is_refused_naming_the_global(tmp_path):
    marker = "/tmp/recsys-pwned-by-pickle"
    if os.path.exists(marker):
        os.remove(marker)
    write_srgnn(tmp_path, [[1, 2]], ([[1]], [RunsCode()]))
    with pytest.raises(GlobalRefused, match=r"global (posix|os)\.system.*refusing"):
        read_srgnn(tmp_path)
    assert not os.path.exists(marker)


def test_pickle_of_an_object_is_refused_even_if_harmless(tmp_path):
    write_srgnn(tmp_path, [[1, 2]], ([[1]], [2]))
    (tmp_path / TRAIN_FILE).write_bytes(pickle.dumps({1, 2}, protocol=3))  # builtins.set
    with pytest.raises(GlobalRefused, match="builtins.set"):
        read_srgnn(tmp_path)


@pytest.mark.parametrize("train, test, message", [
    ([[1, "2"]], ([[1]], [2]), "expected an item id"),
    ([[1, 2.0]], ([[1]], [2]), "got float"),
    ([[1, True]], ([[1]], [2]), "got bool"),
    ([[]], ([[1]], [2]), "non-empty list"),
    ([[0, 1]], ([[1]], [2]), "expected an item id"),
    ([[1, 2]], ([[1]], [2, 3]), "1 prefixes but 2 next items"),
    ([[1, 2]], [[1]], "expected \\(list of prefixes"),
    ({"a": 1}, ([[1]], [2]), "expected a list of sessions"),
])
def test_wrong_shapes_are_named(tmp_path, train, test, message):
    with pytest.raises(SessionDataError, match=message):
        read_srgnn(write_srgnn(tmp_path, train, test))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(SessionDataError, match="test.txt is missing"):
        (tmp_path / TRAIN_FILE).write_bytes(pickle.dumps([[1]]))
        read_srgnn(tmp_path)


PLAIN = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                               st.floats(allow_nan=True), st.text(max_size=5),
                               st.binary(max_size=5)),
                     lambda inner: st.one_of(st.lists(inner, max_size=4),
                                             st.tuples(inner, inner),
                                             st.dictionaries(st.integers(0, 5), inner,
                                                             max_size=3)),
                     max_leaves=12)


@st.composite
def hostile_pickles(draw) -> bytes:
    kind = draw(st.sampled_from(["plain", "bytes", "damaged", "global"]))
    if kind == "plain":
        return pickle.dumps(draw(PLAIN), protocol=draw(st.integers(0, 5)))
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    if kind == "global":
        return pickle.dumps(draw(st.sampled_from([RunsCode(), {1}, frozenset(), range(3),
                                                  complex(1, 2), bytearray(b"x")])),
                            protocol=draw(st.integers(0, 5)))
    good = bytearray(pickle.dumps([[1, 2, 3], [4, 5]], protocol=3))
    position = draw(st.integers(0, len(good) - 1))
    good[position] = draw(st.integers(0, 255))
    return bytes(good[:draw(st.integers(1, len(good)))])


@FAST
@given(train=hostile_pickles(), test=hostile_pickles())
def test_hostile_pickles_give_a_clear_error_or_data(tmp_path_factory, train, test):
    folder = tmp_path_factory.mktemp("srgnn")
    (folder / TRAIN_FILE).write_bytes(train)
    (folder / TEST_FILE).write_bytes(test)
    try:
        data = read_srgnn(folder)
    except SessionDataError as exc:
        assert str(folder) in str(exc)
        return
    assert all(type(i) is int and i > 0 for s in data.train + data.test_prefixes for i in s)
    assert len(data.test_prefixes) == len(data.test_targets)


def test_sequences_reads_both_line_forms(tmp_path):
    path = tmp_path / "seq.txt"
    path.write_text("1 5\n2 7 8\n1 6\n\n1 9 10\n")
    assert read_sequences(path) == {1: [5, 6, 9, 10], 2: [7, 8]}


@pytest.mark.parametrize("text, message", [
    (b"1\n", "expected 'user item"), (b"1 -2\n", "not a positive integer"),
    (b"1 0\n", "expected an item id"), (b"1 x\n", "not a positive integer"),
    (b"1 \xff\n", "not UTF-8"), (b"\n\n", "no sequences"),
    (b"1 99999999999\n", "not a positive integer"),
])
def test_sequences_refuse_bad_lines(tmp_path, text, message):
    path = tmp_path / "seq.txt"
    path.write_bytes(text)
    with pytest.raises(SessionDataError, match=message):
        read_sequences(path)


@FAST
@given(text=st.one_of(st.binary(max_size=80), st.text(max_size=80).map(str.encode),
                      st.lists(st.lists(st.integers(-3, 2**40), min_size=0, max_size=4),
                               max_size=5).map(
                          lambda rows: "\n".join(" ".join(map(str, r)) for r in rows).encode())))
def test_hostile_sequences_give_a_clear_error_or_data(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("seq") / "seq.txt"
    path.write_bytes(text)
    try:
        users = read_sequences(path)
    except SessionDataError as exc:
        assert str(path) in str(exc)
        return
    assert users and all(type(i) is int and i > 0 for items in users.values() for i in items)
