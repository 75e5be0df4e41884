import json

import torch

import models
from bench.cli import main


def _run(capsys, *argv):
    code = main(["infer", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_infer_json_encrypted_small_cnn(capsys):
    code, out, _ = _run(capsys, "--model", "small-cnn", "--in-channels", "1", "--input-size", "8", "--images", "2",
                        "--json")
    assert code == 0
    r = json.loads(out)
    for key in ("rotations", "predicted_rotations", "key_switches", "pmuls", "server_s", "client_s", "floor_s",
                "bytes_client_to_server", "bytes_server_to_client", "galois_key_bytes", "top1_agreement",
                "max_abs_error", "upload_bytes", "download_bytes", "client_upload_s", "client_refresh_s",
                "server_io_s", "network_s", "end_to_end_s"):
        assert key in r
    assert r["images"] == 2 and r["top1_agreement"] == 1.0 and r["max_abs_error"] < 1e-2
    assert r["rotations"] == r["predicted_rotations"] == sum(layer["rotations"] for layer in r["layers"])
    assert [layer["layer"] for layer in r["layers"]] == ["conv1", "conv2", "fc"]
    assert r["refresh"].startswith("simulated")
    assert r["upload"] == "seeded" and r["end_to_end_s"] > r["server_s"] > 0 and r["client_s"] > 0


def test_infer_count_mode_table(capsys):
    code, out, _ = _run(capsys, "--model", "resnet18", "--input-size", "32", "--mode", "count",
                        "--schedule", "output-rotation", "--workers", "1")
    assert code == 0
    assert "layers.3.1.conv2" in out
    assert "rotations        5697 counted = 5697 the plan's own + 0 recomputed by workers; 5697 predicted" in out
    assert "workers          1 per conv (--workers) (in-process)" in out


def test_infer_auto_schedule_resnet18_at_16(capsys):
    """docs/design.md: ResNet18 at 16x16 costs 5,041 rotations with OR; auto's per-layer B cuts that below 1,900."""
    runs = {}
    for key, schedule, more in (("output-rotation", "output-rotation", ()), ("auto", "auto", ("--algorithm", "slot")),
                                ("auto-any", "auto", ())):
        code, out, _ = _run(capsys, "--model", "resnet18", "--input-size", "16", "--mode", "count", "--json",
                            "--schedule", schedule, "--workers", "1", *more)
        assert code == 0
        runs[key] = json.loads(out)
    orr, auto, any_ = runs["output-rotation"], runs["auto"], runs["auto-any"]
    # without --algorithm, auto also weighs matvec per conv (issue 22: at most 1,779 rotations)
    assert any_["rotations"] == any_["predicted_rotations"] <= auto["rotations"] == 1779
    assert any_["pmuls"] < auto["pmuls"] and any_["algorithms"]["matvec"] > 0
    assert orr["rotations"] == orr["predicted_rotations"] == 5041
    assert auto["rotations"] == auto["predicted_rotations"] <= 1900 and auto["counts_match_plan"]
    assert auto["schedule"] == "auto" and auto["pmuls"] == orr["pmuls"] and auto["galois_keys"] < orr["galois_keys"]
    b = {layer["layer"]: layer["schedule"] for layer in auto["layers"] if layer["kind"] == "conv"}
    assert b["layers.0.0.conv1"] == "output-rotation"  # 16x16 layers stay at B = 1
    assert b["layers.3.1.conv2"].startswith("bsgs:")  # 2x2 layers: c_n = 512, B in between
    assert {layer["schedule"] for layer in orr["layers"] if layer["kind"] == "conv"} == {"output-rotation"}


def test_infer_two_workers_count_the_split(capsys):
    """Every conv on two processes: counts equal the parallel plan's (baby steps recomputed per worker)."""
    code, out, _ = _run(capsys, "--model", "resnet20", "--input-size", "8", "--mode", "plain", "--json",
                        "--workers", "2", "--algorithm", "slot")
    r = json.loads(out)
    code1, out1, _ = _run(capsys, "--model", "resnet20", "--input-size", "8", "--mode", "plain", "--json",
                          "--workers", "1", "--algorithm", "slot")
    one = json.loads(out1)
    assert code == code1 == 0 and r["workers"] == 2 and one["workers"] == 1
    assert r["counts_match_plan"] and r["rotations"] == r["predicted_rotations"] > one["rotations"]
    assert r["pmuls"] == one["pmuls"] and r["predictions"] == one["predictions"] and r["within_tolerance"]
    assert r["transfer_bytes"] > 0 and {layer["workers"] for layer in r["layers"] if layer["kind"] == "conv"} == {2}
    # the plan's own rotations are the one-process plan's; the rest are the workers' recomputed baby steps
    assert r["rotations"] - r["recomputed_rotations"] == one["rotations"] and one["recomputed_rotations"] == 0
    assert r["recomputed_rotations"] == sum(layer["recomputed_rotations"] for layer in r["layers"]) > 0
    code, out, _ = _run(capsys, "--model", "resnet20", "--input-size", "8", "--mode", "count", "--workers", "2",
                        "--algorithm", "slot")
    assert code == 0 and "workers          2 per conv (--workers), forked after compile; transfer" in out
    assert (f"{r['rotations']} counted = {one['rotations']} the plan's own + {r['recomputed_rotations']} "
            "recomputed by workers") in out
    code, _, err = _run(capsys, "--model", "resnet20", "--mode", "count", "--stream", "--workers", "2")
    assert code == 2 and "stream=True encodes each layer after the worker processes are forked" in err
    code, _, err = _run(capsys, "--model", "resnet20", "--mode", "count", "--workers", "0")
    assert code == 2 and "argument --workers: expected a positive integer, got '0'" in err


def test_infer_table_shows_schedule(capsys):
    code, out, _ = _run(capsys, "--model", "resnet20", "--input-size", "16", "--mode", "count", "--schedule", "bsgs:2")
    assert code == 0 and "schedule         bsgs:2" in out
    assert "layers.2.2.conv2             conv   bsgs:2" in out
    code, _, err = _run(capsys, "--model", "resnet20", "--input-size", "16", "--mode", "count", "--schedule", "bsgs:64")
    assert code == 2 and "layer conv1: schedule 'bsgs:64': the baby step B must divide c_n = 16" in err


def test_infer_pruned_diagonals_cut_rotations(capsys):
    _, dense, _ = _run(capsys, "--model", "resnet20", "--mode", "count", "--json")
    _, pruned, _ = _run(capsys, "--model", "resnet20", "--mode", "count", "--json", "--prune-diagonals", "0.9")
    d, p = json.loads(dense), json.loads(pruned)
    assert p["rotations"] == p["predicted_rotations"] < d["rotations"] and p["pmuls"] < d["pmuls"]
    # On the slot engine each pruned diagonal is one multiplication fewer (auto's matvec merges shifts, and
    # its rotated copies already cut the dense count): 90% of them pruned, about a tenth are left.
    slot = [json.loads(_run(capsys, "--model", "resnet20", "--mode", "count", "--json", "--algorithm", "slot",
                            *more)[1]) for more in ((), ("--prune-diagonals", "0.9"))]
    assert slot[1]["pmuls"] < slot[0]["pmuls"] / 5


def test_infer_checkpoint(capsys, tmp_path):
    torch.manual_seed(1)
    m = models.build_model("small-cnn", 1, 10)
    torch.save(m.state_dict(), tmp_path / "ok.pt")
    code, out, _ = _run(capsys, "--model", "small-cnn", "--in-channels", "1", "--input-size", "8", "--mode", "plain",
                        "--checkpoint", str(tmp_path / "ok.pt"), "--json")
    assert code == 0 and json.loads(out)["max_abs_error"] < 1e-9
    torch.save(models.build_model("small-cnn", 3, 10).state_dict(), tmp_path / "bad.pt")
    code, _, err = _run(capsys, "--model", "small-cnn", "--in-channels", "1", "--checkpoint", str(tmp_path / "bad.pt"))
    assert code == 2 and "does not fit the model" in err
    code, _, err = _run(capsys, "--model", "small-cnn", "--checkpoint", str(tmp_path / "none.pt"))
    assert code == 2 and "does not exist" in err


def test_infer_errors(capsys):
    code, _, err = _run(capsys, "--model", "vgg")
    assert code == 2 and "unknown model 'vgg'" in err
    code, _, err = _run(capsys, "--model", "small-cnn-square", "--in-channels", "1", "--protocol", "non-interactive",
                        "--poly-modulus-degree", "8192")
    assert code == 2 and "needs 5 multiplicative levels" in err


def test_infer_checkpoint_meta_gives_model_and_real_images(capsys, tmp_path, caplog):
    from bench.results import save_checkpoint

    torch.manual_seed(2)
    meta = {"model": "small-cnn", "in_channels": 1, "num_classes": 10, "dataset": "digits", "input_size": 8,
            "subset": 0, "seed": 0}
    save_checkpoint(models.build_model("small-cnn", 1, 10), tmp_path / "m.pt", meta)
    code, out, _ = _run(capsys, "--checkpoint", str(tmp_path / "m.pt"), "--mode", "plain", "--images", "3", "--json")
    assert code == 0
    r = json.loads(out)
    assert (r["model"], r["in_channels"], r["input_size"]) == ("small-cnn", 1, 8)
    assert r["inputs"].startswith("digits test images 0-2 (")
    assert r["reference_accuracy"] is not None and r["accuracy"] == r["reference_accuracy"]
    assert r["top1_agreement"] == 1.0 and r["checkpoint_meta"]["dataset"] == "digits"
    # an option overrides the meta, with a warning
    code, out, _ = _run(capsys, "--checkpoint", str(tmp_path / "m.pt"), "--mode", "count", "--input-size", "16",
                        "--json")
    assert code == 0 and json.loads(out)["input_size"] == 16
    assert "--input-size 16 overrides the checkpoint's input_size = 8" in caplog.text


def test_infer_without_checkpoint_says_random_images(capsys):
    code, out, _ = _run(capsys, "--model", "small-cnn", "--in-channels", "1", "--input-size", "8", "--mode", "plain",
                        "--json")
    r = json.loads(out)
    assert code == 0 and r["inputs"].startswith("random") and r["accuracy"] is None


def test_infer_matvec_plain_counts_equal_the_plan(capsys):
    """`artemis infer --algorithm matvec`: every conv by matvec (strided ones multiplexed), counted = predicted."""
    code, out, _ = _run(capsys, "--model", "resnet20", "--input-size", "8", "--algorithm", "matvec", "--mode", "plain",
                        "--json")
    r = json.loads(out)
    assert code == 0 and r["algorithm"] == "matvec" and r["schedule"] == "matvec"
    assert r["rotations"] == r["predicted_rotations"] == r["key_switches"] > 0
    assert r["top1_agreement"] == 1.0 and r["max_abs_error"] < 1e-9
    convs = [layer for layer in r["layers"] if layer["kind"] == "conv"]
    assert len(convs) == 19 and all(layer["schedule"].startswith("matvec bsgs:") for layer in convs)
    assert all(layer["rotations"] == layer["predicted_rotations"] for layer in r["layers"])


def test_infer_auto_chooses_the_algorithm_per_conv(capsys):
    """No --algorithm and --schedule auto (the default): each conv by the lowest predicted time, and why. At
    16x16 with a value bound (convs at the last level) both algorithms win some; at level 0 matvec's complex
    packing and rotated copies win every conv."""
    code, out, _ = _run(capsys, "--model", "resnet20", "--input-size", "16", "--mode", "plain", "--workers", "1",
                        "--value-bound", "16", "--json")
    r = json.loads(out)
    convs = [layer for layer in r["layers"] if layer["kind"] == "conv"]
    assert code == 0 and r["algorithm"] == "auto" and r["schedule"] == "auto"
    assert sum(r["algorithms"].values()) == len(convs) == 19 and set(r["algorithms"]) == {"slot", "matvec"}
    assert all(layer["reason"].startswith(f"auto: {layer['schedule']} ({layer['algorithm']})") for layer in convs)
    assert r["rotations"] == r["predicted_rotations"] and r["max_abs_error"] < 1e-9
    code, out, _ = _run(capsys, "--model", "resnet20", "--input-size", "16", "--mode", "count", "--workers", "1",
                        "--json")
    r = json.loads(out)
    assert code == 0 and r["algorithms"] == {"matvec": 19} and r["rotations"] == r["predicted_rotations"]
    code, out, _ = _run(capsys, "--model", "resnet20", "--input-size", "8", "--mode", "count", "--workers", "1",
                        "--algorithm", "slot", "--json")
    r = json.loads(out)
    assert code == 0 and r["algorithm"] == "slot" and {layer["algorithm"] for layer in r["layers"]
                                                       if layer["kind"] == "conv"} == {"slot"}


def test_infer_value_bound_runs_the_slot_convs_at_the_last_level(capsys):
    code, out, _ = _run(capsys, "--model", "resnet20", "--input-size", "8", "--mode", "plain", "--images", "1",
                        "--schedule", "output-rotation", "--algorithm", "slot", "--workers", "1",
                        "--value-bound", "16", "--json")
    assert code == 0
    r = json.loads(out)
    convs = [layer for layer in r["layers"] if layer["kind"] == "conv"]
    assert r["value_bound"] == 16.0 and {c["level"] for c in convs} == {1} and r["counts_match_plan"]
    assert r["max_abs_error"] < 1e-9
    code, _, err = _run(capsys, "--model", "small-cnn-square", "--protocol", "non-interactive", "--input-size", "8",
                        "--value-bound", "4")
    assert code == 2 and "hybrid protocol" in err
    code, _, err = _run(capsys, "--model", "resnet20", "--input-size", "8", "--value-bound", "0")
    assert code == 2 and "--value-bound" in err
