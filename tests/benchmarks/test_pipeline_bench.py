from recsys.benchmarks.pipeline_bench import step_seconds

LOG = """\
22:50:44.921 - INFO - Executing task \x1b[96m'extract-op'\x1b[0m
22:50:48.772 - INFO - Task \x1b[96m'extract-op'\x1b[0m finished with status \x1b[92mSUCCESS\x1b[0m
22:50:48.773 - INFO - Task \x1b[96m'extract-op'\x1b[0m outputs:
22:50:48.774 - INFO - Executing task \x1b[96m'validate-op'\x1b[0m
22:50:50.887 - INFO - Task \x1b[96m'validate-op'\x1b[0m finished with status \x1b[92mSUCCESS\x1b[0m
"""


def test_step_seconds_from_kfp_local_log_lines():
    assert step_seconds(LOG) == {"extract-op": 3.85, "validate-op": 2.11}
