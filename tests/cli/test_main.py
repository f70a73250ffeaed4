"""The command line loads only the module of the command it runs."""
import subprocess
import sys

import pytest

from recsys.cli.main import COMMAND_MODULES, build_parser, command_of


@pytest.mark.parametrize("argv, command", [
    (["stream", "processor", "--member", "0/2"], "stream"),
    (["--log-level", "DEBUG", "monitor", "run"], "monitor"),
    (["--log-level=DEBUG", "run"], "run"),
    (["--help"], None), ([], None)])
def test_the_command_is_the_first_positional(argv, command):
    assert command_of(argv) == command


def test_a_stream_worker_starts_without_evidently_kfp_or_mlflow():
    probe = ("import sys; from recsys.cli.main import build_parser; "
             "build_parser('stream').parse_args(['stream', 'processor']); "
             "print(sorted(m for m in ('evidently', 'kfp', 'mlflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def commands(parser) -> list[str]:
    """The commands a parser offers (argparse keeps them on its one subparsers action)."""
    return list(parser._subparsers._group_actions[0].choices)


def test_help_and_unknown_commands_see_every_command():
    assert commands(build_parser()) == list(COMMAND_MODULES)
    assert commands(build_parser("no-such-command")) == list(COMMAND_MODULES)
    assert commands(build_parser("stream")) == ["stream"]


def test_an_experiment_takes_dwell_time_as_a_secondary_metric():
    from recsys.cli.experiment_commands import _definition

    args = build_parser("experiment").parse_args([
        "experiment", "start", "seeds-ab", "--variants", "control=popularity:50,a=champion:50",
        "--secondary-metric", "dwell_time", "--secondary-metric", "conversion"])
    assert _definition(args).secondary_metrics == ("dwell_time", "conversion")
    with pytest.raises(SystemExit):  # argparse refuses a metric nobody defines
        build_parser("experiment").parse_args([
            "experiment", "start", "x", "--variants", "c=popularity:100",
            "--secondary-metric", "dwell"])
