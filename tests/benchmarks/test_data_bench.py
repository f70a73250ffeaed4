"""The data benchmark reads its child's figures whatever else the child printed."""
import pytest

from recsys.benchmarks.data_bench import RESULT_MARK, child_result


def test_the_result_line_is_found_among_the_jvms_output():
    out = f"Setting default log level\n{RESULT_MARK}{{\"seconds\": {{\"extract\": 1.5}}}}\n" \
          "[Stage 12:>   (0 + 2) / 2]\n"
    assert child_result(out) == {"seconds": {"extract": 1.5}}


def test_no_result_line_fails_with_the_end_of_the_output():
    with pytest.raises(RuntimeError, match="Stage 12"):
        child_result("started\n[Stage 12:> (0 + 2) / 2]\n")
