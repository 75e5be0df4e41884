"""What the user can fix is one line and exit 2; anything else is a bug: one line, exit 1,
and its traceback with -v. A bare command prints its usage."""

import pytest

import bench.cli.results as results_cli
from bench.cli import main
from heconv.errors import InputError


def _boom(args):
    return {}["missing"]  # a bug: KeyError


def test_an_internal_error_says_so_and_points_to_verbose(monkeypatch, capsys):
    monkeypatch.setattr(results_cli, "status", _boom)
    assert main(["results", "status"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "artemis results: internal error: KeyError: 'missing' (run with -v for the traceback)"]


def test_verbose_shows_the_traceback(monkeypatch, capsys):
    monkeypatch.setattr(results_cli, "status", _boom)
    assert main(["-v", "results", "status"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "in _boom" in err
    assert err.strip().splitlines()[-1] == "artemis results: internal error: KeyError: 'missing'"


@pytest.mark.parametrize("error, code", [(InputError("--db x: not usable"), 2),
                                         (FileNotFoundError(2, "No such file or directory", "x.sqlite"), 2),
                                         (OSError("no space left"), 1), (ValueError("an invariant broke"), 1)])
def test_input_errors_exit_2_and_others_1(monkeypatch, capsys, error, code):
    def fail(args):
        raise error
    monkeypatch.setattr(results_cli, "status", fail)
    assert main(["results", "status"]) == code
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert ("internal error" in err) == (code == 1)


def test_a_missing_database_is_one_line_exit_2(tmp_path, capsys):
    assert main(["results", "status", "--db", str(tmp_path / "none.sqlite")]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"artemis results: error: --db {tmp_path / 'none.sqlite'}: no experiments "
                                        "database there (run 'artemis sweep' first)"]


@pytest.mark.parametrize("argv, usage", [([], "usage: artemis [-h]"), (["results"], "usage: artemis results [-h]")])
def test_a_bare_command_prints_its_usage(capsys, argv, usage):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(usage) and "error: the following arguments are required" in err


def test_results_status_names_its_database(tmp_path, capsys):
    from bench.experiments.store import ExperimentStore

    db = tmp_path / "e.sqlite"
    ExperimentStore(db)
    assert main(["results", "status", "--db", str(db)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"database: {db}: no runs"
