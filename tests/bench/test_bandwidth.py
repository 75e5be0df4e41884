"""--bandwidth: the rate parser, the end-to-end time in `artemis infer`, and the coefficient chunking it drives."""

import json

import pytest

from bench.cli import main
from bench.harness.bandwidth import parse_bandwidth, show_bandwidth, transfer_seconds
from heconv.errors import InputError


@pytest.mark.parametrize("text, bps", [("1gbit", 1e9), ("100mbit", 1e8), ("100Mbit/s", 1e8), ("2.5 Gbps", 2.5e9),
                                       ("64kbit", 64e3), ("1e3bit", 1e3)])
def test_rates(text, bps):
    assert parse_bandwidth(text) == bps


@pytest.mark.parametrize("text", ["", "fast", "1gb", "100MB/s", "0gbit", "-1mbit", "1e999gbit", "gbit", "1 g bit"])
def test_a_bad_rate_is_one_line_naming_it(text):
    with pytest.raises(InputError) as e:
        parse_bandwidth(text)
    message = str(e.value)
    assert "\n" not in message and repr(text) in message and "1gbit or 100mbit" in message


def test_transfer_and_display():
    assert transfer_seconds(12_500_000, parse_bandwidth("100mbit")) == pytest.approx(1.0)
    assert show_bandwidth(parse_bandwidth("100mbit")) == "100 Mbit/s"


def test_the_cli_refuses_a_bad_rate_in_one_line(capsys):
    assert main(["infer", "--model", "small-cnn", "--bandwidth", "10MB", "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--bandwidth" in err and "'10MB'" in err


def _infer(capsys, *argv):
    code = main(["infer", "--model", "small-cnn", "--in-channels", "1", "--input-size", "8", "--mode", "plain",
                 *argv])
    assert code == 0
    return capsys.readouterr().out


def test_infer_reports_every_phase_at_the_rate(capsys):
    r = json.loads(_infer(capsys, "--bandwidth", "100mbit", "--json"))
    assert r["bandwidth_bps"] == 1e8 and r["upload"] == "seeded"
    assert r["network_s"] == pytest.approx(8 * (r["upload_bytes"] + r["download_bytes"]) / 1e8)
    assert r["end_to_end_s"] == pytest.approx(r["client_s"] + r["server_s"] + r["server_io_s"] + r["network_s"])
    public = json.loads(_infer(capsys, "--upload", "public", "--json"))
    assert public["bandwidth_bps"] == 1e9 and public["upload"] == "public"
    assert public["upload_bytes"] > 1.9 * r["upload_bytes"] and public["download_bytes"] == r["download_bytes"]
    text = _infer(capsys, "--bandwidth", "100mbit")
    assert "end to end" in text and "at 100 Mbit/s = client" in text and "seeded uploads" in text


def _layer(capsys, *argv):
    code = main(["layer", "--c-in", "64", "--c-out", "64", "--hw", "16", "--algorithm", "coefficient", "--mode",
                 "plain", "--json", *argv])
    assert code == 0
    return json.loads(capsys.readouterr().out)


def test_layer_chunking_follows_the_rate_and_the_objective(capsys):
    r = _layer(capsys, "--bandwidth", "100mbit")
    assert r["bandwidth_bps"] == 1e8 and r["chunking_objective"] == "end-to-end" and r["upload"] == "seeded"
    choice = r["chunk_choice"]
    assert len(choice["candidates"]) == 25 and choice["candidates"][choice["chosen"]]["c_w"] == r["c_w"] == 4
    assert "100 Mbit/s" in choice["reason"]
    old = _layer(capsys, "--chunking", "server")
    assert old["c_w"] == 1 and old["bandwidth_bps"] == 1e9 and old["n_in"] == 64
    assert old["bytes_client_to_server"] > 2.5 * r["bytes_client_to_server"]
    assert main(["layer", "--c-in", "4", "--c-out", "4", "--hw", "4", "--bandwidth", "fast"]) == 2


def test_infer_predicts_its_phases_and_names_the_chunking_objective(capsys):
    new = json.loads(_infer(capsys, "--algorithm", "coefficient", "--bandwidth", "100mbit", "--json"))
    old = json.loads(_infer(capsys, "--algorithm", "coefficient", "--chunking", "server", "--json"))
    assert new["predicted_phases"]["upload_bytes"] == new["upload_bytes"]
    assert new["chunking_objective"] == "end to end at 100 Mbit/s, seeded uploads"
    assert old["chunking_objective"] == "server time alone"
    text = _infer(capsys, "--algorithm", "coefficient")
    assert "predicted" in text and "chunking: end to end at 1000 Mbit/s, seeded uploads" in text
