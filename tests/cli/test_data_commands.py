import json

import pytest

from recsys.cli.main import build_parser, main


@pytest.mark.parametrize("command", ["generate", "extract", "validate", "preprocess", "run"])
def test_every_command_explains_its_options(command, capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([command, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "--help" in text and ("--lake" in text or command in ("generate", "run"))


def test_cli_generate_extract_validate_preprocess(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECSYS_STATE_DIR", str(tmp_path / "state"))
    source = tmp_path / "shop.jsonl"
    assert main(["generate", "--events", "4000", "--seed", "1", "--end", "2026-10-31",
                 "--out", str(source), "--dirt-malformed", "0.005"]) == 0
    assert json.loads(capsys.readouterr().out)["events"] == 4000
    assert main(["extract", "--source", str(source)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["rows_written"], report["rows_quarantined"]) == (4000, 20)
    assert main(["validate"]) == 0
    assert json.loads(capsys.readouterr().out)["rows_clean"] == 4000
    assert main(["preprocess", "--holdout-days", "5"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["events_in"] == 4000
    assert summary["snapshot"].startswith(str(tmp_path / "state" / "lake" / "processed"))


def test_cli_reports_a_bad_source_clearly(tmp_path, capsys, caplog):
    bad = tmp_path / "odd.csv"
    bad.write_text("a,b,c\n1,2,3\n")
    assert main(["extract", "--source", str(bad), "--lake", str(tmp_path / "lake")]) == 2
    assert "cannot tell the format" in caplog.text and "a, b, c" in caplog.text
