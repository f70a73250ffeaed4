"""Workers that start together (a StatefulSet's pods) each open Feast's SQL registry on a
fresh PostgreSQL database and apply the definitions: every one of them comes up, and the
registry holds each definition once."""
import os
import subprocess
import sys
import time

import pytest

from recsys.tools.local_services import temporary_postgres_database
from tests.conftest import REPO

pytestmark = pytest.mark.integration
WORKERS = 4
OPEN_AND_APPLY = """
import sys, time
from recsys.core.settings import Settings
from recsys.feature_repo.features.store import apply_repo, open_store
settings = Settings(state_dir=sys.argv[1], feast_profile="production",
                    feast_registry_url=sys.argv[2], redis_url="redis://127.0.0.1:6379/14")
time.sleep(max(0.0, float(sys.argv[3]) - time.time()))  # all start at the same instant
store, repo = open_store(settings)
apply_repo(store, repo)
print(sorted(view.name for view in store.list_feature_views()))
"""


def test_workers_starting_together_all_open_and_apply_the_registry(tmp_path):
    with temporary_postgres_database("feast_race") as registry:
        start = time.time() + 8  # after every interpreter has imported Feast
        env = {**os.environ, "PYTHONPATH": str(REPO), "RECSYS_NO_PROGRESS": "1"}
        workers = [subprocess.Popen([sys.executable, "-c", OPEN_AND_APPLY,
                                     str(tmp_path / f"w{k}"), registry, str(start)],
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True) for k in range(WORKERS)]
        outputs = [w.communicate(timeout=240) for w in workers]
        for worker, (out, err) in zip(workers, outputs):
            assert worker.returncode == 0, err[-3000:]
            assert out.strip().splitlines()[-1] == "['item_stats', 'user_session', 'user_stats']"


def test_a_create_that_lost_the_race_is_tried_again_and_other_errors_are_not():
    """What the losing worker of the race above gets from PostgreSQL (both saw the table
    missing; the second CREATE fails with DuplicateTable), made to happen every time."""
    import sqlalchemy
    from sqlalchemy.exc import ProgrammingError

    from recsys.feature_repo.features.store import _racing_writers

    with temporary_postgres_database("feast_lost_race") as url:
        engine = sqlalchemy.create_engine(url)
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text("CREATE TABLE projects (id int)"))
        calls = []

        def create_then_read():
            calls.append(len(calls))
            with engine.begin() as connection:
                if len(calls) == 1:  # as the loser saw it: missing, so created
                    connection.execute(sqlalchemy.text("CREATE TABLE projects (id int)"))
                return connection.execute(sqlalchemy.text("SELECT count(*) FROM projects")
                                          ).scalar()

        assert _racing_writers(create_then_read) == 0 and len(calls) == 2
        calls.clear()

        def broken():
            calls.append(len(calls))
            with engine.begin() as connection:
                connection.execute(sqlalchemy.text("CREATE TABLE (id int)"))

        with pytest.raises(ProgrammingError):
            _racing_writers(broken)
        assert len(calls) == 1
        engine.dispose()
