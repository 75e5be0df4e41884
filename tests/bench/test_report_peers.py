"""bench.report.peers on synthetic runs: ours beside Orion per shape, the ratios, and report.md's section."""

import json

import pytest

from bench.report import load_benchmarks, write_report
from bench.report.peers import peer_rows, peers_section

from .test_report import _layer, _write


def _peer(name, median, peer, shape=(64, 64), schedule="auto", workers=1, **info):
    c_in, c_out = shape
    e = {"suite": "peer", "peer": peer, "network": "resnet18", "layer": f"l{c_in}", "poly_modulus_degree": 8192,
         "c_in": c_in, "c_out": c_out, "hw": 16, "kernel": 3, "stride": 1, "max_abs_error": 1e-6, **info}
    if peer == "artemis":
        e.update(requested_schedule=schedule, requested_workers=workers, workers=workers, rotations=92,
                 counts={"rotations": 92, "key_switches": 92, "pmuls": 2304})  # counts: must not reach the fits
    else:
        e.update(requested_schedule=None, requested_workers=1, orion_version="1.0.2", key_switches_estimate=384)
    return {"name": name, "stats": {"mean": median * 1.5, "median": median}, "extra_info": e}


PEERS = [
    _peer("64-w1", 0.40, "artemis"),
    _peer("64-w2", 0.24, "artemis", workers=2),
    _peer("64-orion", 0.80, "orion"),
    _peer("16-w1", 0.05, "artemis", shape=(16, 16)),
    _peer("16-w2", 0.04, "artemis", shape=(16, 16), workers=2),
    _peer("16-or", 0.06, "artemis", shape=(16, 16), schedule="output-rotation"),
    _peer("16-orion", 0.05, "orion", shape=(16, 16)),
    _peer("32-w1", 0.10, "artemis", shape=(32, 32)),  # no Orion beside it
    _peer("64-matvec", 0.20, "artemis", schedule="matvec"),
]


def test_rows_and_ratios_use_the_median(tmp_path):
    rows = {r["c_in"]: r for r in peer_rows([_write(tmp_path, PEERS, primitives=False)])}
    assert list(rows) == [16, 32, 64]
    r = rows[64]
    assert (r["ours_auto_w1_s"], r["ours_auto_w2_s"], r["orion_s"]) == (0.40, 0.24, 0.80)
    assert r["ours_auto_w1_over_orion"] == pytest.approx(0.5) and r["ours_auto_w2_over_orion"] == pytest.approx(0.3)
    assert r["ours_auto_w2_workers"] == 2 and r["orion_key_switches_estimate"] == 384
    assert r["ours_or_w1_s"] is None and r["ours_or_w1_over_orion"] is None
    assert rows[16]["ours_or_w1_over_orion"] == pytest.approx(1.2)
    assert rows[32]["orion_s"] is None and rows[32]["ours_auto_w1_over_orion"] is None


def test_a_shapes_cases_come_from_one_run(tmp_path):
    """No ratio divides one run's time by another's (their machines may differ): a shape takes every case
    from the last run holding Orion's case of it, and a shape that run lacks keeps its own newest run."""
    first = _write(tmp_path, PEERS, name="a.json", primitives=False)
    second = _write(tmp_path, [_peer("64-orion", 1.6, "orion")], name="b.json", primitives=False)
    rows = {r["c_in"]: r for r in peer_rows([first, second])}
    assert rows[64]["orion_s"] == 1.6 and rows[64]["ours_auto_w1_s"] is None
    assert rows[64]["ours_auto_w1_over_orion"] is None
    assert rows[16]["ours_auto_w1_over_orion"] == pytest.approx(1.0)  # all from a.json
    third = _write(tmp_path, [_peer("64-w1", 0.2, "artemis")], name="c.json", primitives=False)  # ours, no Orion
    assert {r["c_in"]: r for r in peer_rows([first, third])}[64]["ours_auto_w1_s"] == 0.40


def test_section(tmp_path):
    md = "\n".join(peers_section(peer_rows([_write(tmp_path, PEERS, primitives=False)])))
    assert ("| resnet18 | l64 | 64->64, 16x16, 1 | 0.4000 | 0.2400 (2) | 0.2000 | 0.8000 | 0.50 | 0.30 | 0.25 "
            "| 92 / 384 |") in md
    assert "| resnet18 | l32 | 32->32, 16x16, 1 | 0.1000 | - | - | - | - | - | - |" in md
    # geometric means over the shapes both ran: auto w1 (0.5, 1.0), w2 (0.3, 0.8), matvec (0.25)
    assert ("Geometric means over the shapes where both ran: auto w1 / Orion 0.71 (2 shapes); auto w2 / Orion 0.49 "
            "(2 shapes); matvec w1 / Orion 0.25 (1 shapes).") in md
    assert "Orion 1.0.2" in md and "l16 0.0600 s (1.20 of Orion's)" in md
    assert peers_section([]) == []
    only_ours = peers_section(peer_rows([_write(tmp_path, PEERS[:2], name="o.json", primitives=False)]))
    assert any("README section 'Beside Orion'" in line for line in only_ours)


def test_peer_cases_stay_out_of_the_fits_and_land_in_the_report(tmp_path):
    run = _write(tmp_path, [_layer("l1", 92, 0.9, layer="layer1.conv3x3"), _layer("l2", 40, 0.5, layer="x"),
                            *PEERS])
    cases, _, origins = load_benchmarks([run])
    assert [c.name for c in cases] == ["l1", "l2"] and origins[0]["peer_cases"] == len(PEERS)
    model = write_report([run], tmp_path / "out")
    assert "## Beside Orion" in (tmp_path / "out" / "report.md").read_text()
    saved = json.loads((tmp_path / "out" / "cost_model.json").read_text())
    assert len(saved["peers"]) == 3 and model["peers"][0]["c_in"] == 16


def test_peer_only_run_says_what_is_missing(tmp_path):
    with pytest.raises(ValueError, match="peer cases only: name a full run beside them"):
        load_benchmarks([_write(tmp_path, PEERS, primitives=False)])


def test_peer_case_without_its_shape_is_refused(tmp_path):
    bad = _peer("x", 0.1, "orion")
    del bad["extra_info"]["c_out"]
    with pytest.raises(ValueError, match=r"x: peer case without extra_info \['c_out'\]"):
        peer_rows([_write(tmp_path, [bad], primitives=False)])


def test_last_level_cases_get_their_own_columns_and_means(tmp_path):
    runs = PEERS + [_peer("64-ll1", 0.20, "artemis", schedule="auto-last-level", max_abs_error=2e-4),
                    _peer("64-ll2", 0.12, "artemis", schedule="auto-last-level", workers=2)]
    rows = {r["c_in"]: r for r in peer_rows([_write(tmp_path, runs, primitives=False)])}
    r = rows[64]
    assert (r["ours_ll_w1_s"], r["ours_ll_w2_s"]) == (0.20, 0.12) and r["ours_auto_w1_s"] == 0.40
    assert r["ours_ll_w1_over_orion"] == pytest.approx(0.25) and r["ours_ll_w2_over_orion"] == pytest.approx(0.15)
    md = "\n".join(peers_section(list(rows.values())))
    assert "| resnet18 | l64 | 0.2000 | 0.1200 | 0.25 | 0.15 | 2.0e-04 / 1.0e-06 |" in md
    assert "ll w1 / Orion 0.25 (1 shapes)" in md


def test_each_run_keeps_its_own_means_and_cpu(tmp_path):
    """Merged runs show the newest case per shape, and each run's own geometric means beside its CPU:
    ours/Orion moves with the machine."""
    from bench.report.peers import peer_runs

    first = _write(tmp_path, PEERS, name="a.json", primitives=False, machine_info={"cpu": {"brand_raw": "AMD EPYC"}})
    second = _write(tmp_path, [_peer("64-w1", 0.40, "artemis"), _peer("64-orion", 1.6, "orion")], name="b.json",
                    primitives=False)
    runs = peer_runs([first, second])
    assert [(r["file"], r["cpu"]) for r in runs] == [("a.json", "AMD EPYC"), ("b.json", "not recorded")]
    assert runs[0]["means"]["ours_auto_w1"] == (pytest.approx(0.5 ** 0.5), 2)  # 0.40/0.80 and 0.05/0.05
    assert runs[1]["means"]["ours_auto_w1"] == (pytest.approx(0.25), 1) and runs[1]["means"]["ours_auto_w2"] is None
    md = "\n".join(peers_section(peer_rows([first, second]), runs))
    assert runs[0]["worst"] == {"ours_auto_w1": (pytest.approx(1.0), "l16"), "ours_ll_w1": None}  # 0.05/0.05
    assert "| a.json | AMD EPYC | 0.71 (2) | 0.49 (2) | 0.25 (1) | - | - | 1.00 (l16) | - |" in md
    assert "| b.json | not recorded | 0.25 (1) | - | - | - | - | 0.25 (l64) | - |" in md
    assert "CPUs: a.json on AMD EPYC, b.json on not recorded." in md
    assert len(peer_runs([first, first])) == 1
    one = "\n".join(peers_section(peer_rows([first]), peer_runs([first])))
    assert "Run by run" not in one and "CPUs: a.json on AMD EPYC." in one
    ours_only = _write(tmp_path, PEERS[:2], name="c.json", primitives=False)  # no Orion case: no ratio, no row
    md = "\n".join(peers_section(peer_rows([ours_only, first, second]), peer_runs([ours_only, first, second])))
    assert "| c.json |" not in md and "CPUs: c.json on not recorded, a.json" in md
