import json

from recsys.cli.main import main


def test_stock_and_promotions_from_the_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RECSYS_STATE_DIR", str(tmp_path))
    assert main(["catalog", "stock", "i1", "i2", "--unavailable"]) == 0
    assert main(["catalog", "stock", "i2", "--available"]) == 0
    assert main(["catalog", "promote", "i3", "--boost", "2", "--end", "2099-01-01",
                 "--id", "winter"]) == 0
    assert main(["catalog", "promote", "i4", "--pin", "1", "--start", "2099-01-01",
                 "--end", "2099-02-01"]) == 0  # not yet in force
    capsys.readouterr()
    assert main(["catalog", "rules"]) == 0
    rules = json.loads(capsys.readouterr().out)
    assert rules["unavailable"] == ["i1"]
    assert [(p["promotion_id"], p["item_id"], p["boost"]) for p in rules["promotions"]] == [
        ("winter", "i3", 2.0)]
    assert main(["catalog", "end-promotion", "winter"]) == 0
    assert main(["catalog", "compact"]) == 0
    capsys.readouterr()
    assert main(["catalog", "rules"]) == 0
    assert json.loads(capsys.readouterr().out)["promotions"] == []
    assert main(["catalog", "promote", "i3", "--end", "2099-01-01"]) != 0  # neither boost nor pin
    assert main(["catalog", "end-promotion", "missing"]) != 0
