"""The ``fnnet`` command: through ``main(argv)`` in this process (the ``fnnet_cli`` fixture), and, for what
only a real process shows (the console script, ``python -m``, the on-disk compile cache), in a subprocess."""

import csv
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import fnnet
from fnnet.lessons import edition_ids

TINY = ["--batch", "8", "--d-in", "20", "--hidden", "10", "--d-out", "3"]


CLASSIC = edition_ids("classic")


def run(*argv, cwd=None):
    """A real ``python -m fnnet`` process."""
    return subprocess.run(
        [sys.executable, "-m", "fnnet", *argv], capture_output=True, text=True, cwd=cwd, timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def test_lessons_lists_both_editions_in_order(fnnet_cli):
    code, out, err = fnnet_cli("lessons")
    assert code == 0, err
    rows = [line.split()[:2] for line in out.splitlines()[2:]]
    assert [r[0] for r in rows] == list(fnnet.LESSONS)
    assert [r[1] for r in rows] == ["classic"] * 8 + ["sine"] * 8


def test_train_one_lesson_prints_its_row(fnnet_cli):
    code, out, err = fnnet_cli("train", "nn", "--steps", "40", "--quiet", *TINY)
    assert code == 0, err
    header, _, row = out.splitlines()[:3]
    assert header.split()[:3] == ["lesson", "optimizer", "lr"]
    assert row.split()[:3] == ["nn", "sgd-by-hand", "0.0001"]
    assert err == ""


def test_train_all_writes_json_metrics_and_a_plot(fnnet_cli, tmp_path):
    metrics, plot = tmp_path / "m.json", tmp_path / "curves.png"
    code, out, err = fnnet_cli("train", "--steps", "20", *TINY, "--metrics", str(metrics), "--plot", str(plot))
    assert code == 0, err
    table = out.splitlines()
    assert [line.split()[0] for line in table[2:10]] == CLASSIC and table[10].startswith("metrics written")  # the classic edition
    doc = json.loads(metrics.read_text())
    assert [r["lesson"] for r in doc["lessons"]] == CLASSIC
    for r in doc["lessons"]:
        assert len(r["losses"]) == 20 and r["config"]["steps"] == 20
        assert r["config"]["sizes"] == {"batch": 8, "d_in": 20, "hidden": 10, "d_out": 3}
        assert r["run_seconds"] > 0 and r["compile_seconds"] >= 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "m.json"]  # no temporary files left


def test_metrics_match_the_library_in_both_formats(fnnet_cli, tmp_path):
    as_json, as_csv = tmp_path / "m.json", tmp_path / "m.csv"
    for path in (as_json, as_csv):
        code, _, err = fnnet_cli("train", "optim", "--steps", "30", "--seed", "4", *TINY, "--metrics", str(path), "--quiet")
        assert code == 0, err
    expected = fnnet.fit("optim", steps=30, seed=4, sizes=(8, 20, 10, 3)).losses
    doc = json.loads(as_json.read_text())
    assert set(doc) == {"lesson", "config", "losses", "compile_seconds", "run_seconds"}
    assert doc["lesson"] == "optim" and doc["config"]["optimizer"] == "adam" and doc["config"]["seed"] == 4
    np.testing.assert_allclose(doc["losses"], expected, rtol=1e-6)
    with open(as_csv) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["step", "loss"] and len(rows) == 31
    np.testing.assert_array_equal([int(r[0]) for r in rows[1:]], np.arange(30))
    np.testing.assert_allclose([float(r[1]) for r in rows[1:]], expected, rtol=1e-6)


def test_python_dash_m_and_the_console_script_agree(fnnet_cli):
    """Real processes: ``python -m fnnet`` and the installed ``fnnet`` script print what ``main`` prints."""
    script = os.path.join(os.path.dirname(sys.executable), "fnnet")
    if not os.path.exists(script):
        pytest.skip("console script not installed next to this interpreter")
    out = subprocess.run([script, "lessons"], capture_output=True, text=True, timeout=120)
    as_module = run("lessons")
    assert out.returncode == 0 and as_module.returncode == 0, (out.stderr, as_module.stderr)
    assert out.stdout == as_module.stdout == fnnet_cli("lessons")[1]
    bad = run("train", "nope")  # a user error from a real process: one line, exit 2, no traceback
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode == 2 and len(lines) == 1 and "unknown lesson 'nope'" in lines[0], bad.stderr


def test_the_program_sets_its_garbage_collector_and_main_leaves_yours(monkeypatch, capsys):
    """The console script and ``python -m fnnet`` run ``program``, which sets ``PROGRAM_GC_THRESHOLD`` for its
    short process and freezes what it holds when ``main`` returns; ``main``, called from someone's Python, leaves
    their collector as it was."""
    import gc
    import runpy
    from importlib.metadata import entry_points

    from fnnet.cli import PROGRAM_GC_THRESHOLD, main, program

    assert entry_points(group="console_scripts")["fnnet"].value == "fnnet.cli:program"
    # Count the calls to gc.freeze rather than the frozen objects: a frozen object that dies leaves the count.
    freezes = []
    monkeypatch.setattr(gc, "freeze", lambda: freezes.append(gc.get_threshold()))
    saved = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        assert main(["lessons"]) == 0 and gc.get_threshold() == (700, 10, 10) and freezes == []
        assert program(["lessons"]) == 0 and gc.get_threshold() == PROGRAM_GC_THRESHOLD != (700, 10, 10)
        assert freezes == [PROGRAM_GC_THRESHOLD]  # what the process holds as it ends is not searched for cycles
        gc.set_threshold(700, 10, 10)
        monkeypatch.setattr(sys, "argv", ["fnnet", "lessons"])
        with pytest.raises(SystemExit) as exit_:
            runpy.run_module("fnnet", run_name="__main__")  # python -m fnnet lessons
        assert exit_.value.code == 0 and gc.get_threshold() == PROGRAM_GC_THRESHOLD
    finally:
        gc.set_threshold(*saved)
    assert capsys.readouterr().out.count("what it adds") == 3  # the table, three times


def _user_errors(tmp):
    cases = [
        (["train", "nope"], "unknown lesson 'nope'"),
        (["train", "nn", "--optimizer", "lbfgs"], "invalid choice: 'lbfgs'"),
        (["train", "numpy", "--optimizer", "adam"], "takes only sgd"),
        (["train", "nn", "--steps", "0"], "--steps: expected a positive integer"),
        (["train", "nn", "--steps", "-3"], "--steps: expected a positive integer"),
        (["train", "nn", "--steps", "ten"], "--steps: expected a positive integer"),
        (["train", "nn", "--lr", "0"], "--lr: expected a finite positive number"),
        (["train", "nn", "--lr", "-0.1"], "--lr: expected a finite positive number"),
        (["train", "nn", "--lr", "nan"], "--lr: expected a finite positive number"),
        (["train", "nn", "--lr", "inf"], "--lr: expected a finite positive number"),
        (["train", "nn", "--batch", "0"], "--batch: expected a positive integer"),
        (["train", "nn", "--d-in", "-1"], "--d-in: expected a positive integer"),
        (["train", "nn", "--hidden", "0"], "--hidden: expected a positive integer"),
        (["train", "nn", "--d-out", "1.5"], "--d-out: expected a positive integer"),
        (["train", "nn", "--log-every", "0"], "--log-every: expected a positive integer"),
        (["train", "nn", "--seed", "-2"], "--seed: expected a non-negative integer"),
        (["train", "nn", "--device", "quantum"], "invalid choice: 'quantum'"),
        (["train", "nn", "--metrics", f"{tmp}/afile/m.json"], "is not a folder"),
        (["train", "nn", "--metrics", f"{tmp}/m.txt"], "unknown extension '.txt'"),
        (["train", "nn", "--metrics", f"{tmp}/adir.json"], "is a directory"),
        (["train", "nn", "--plot", f"{tmp}/p.jpg"], "unknown extension '.jpg'"),
        (["train", "nn", "--plot", f"{tmp}/afile/missing/p.png"], "is not a folder"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["train", "nn", "--stepz", "3"], "unrecognized arguments"),
        (["train", "nn", "--steps", "99999999999"], "steps must be at most"),
        (["train", "nn", "--batch", "100000000", "--d-in", "100000"], "need at least"),
        (["train", "nn", "--checkpoint-dir", f"{tmp}/afile/x"], "afile' is not a folder"),
        (["train", "nn", "--checkpoint-dir", f"{tmp}/{'n' * 300}"], "File name too long"),
        (["train", "nn", "--save", f"{tmp}/{'n' * 300}.npz"], "File name too long"),
        (["train", "nn", "--resume", "--checkpoint-dir", f"{tmp}/nothing"], "nothing to resume"),
        (["train", "nn", "--checkpoint-every", "5"], "needs --checkpoint-dir"),
        (["sweep", "numpy", "--lr", "1e-6"], "runs in NumPy"),
        (["sweep", "nn", "--lr", "1e-4,-2"], "--lr: expected a finite positive number"),
        (["compare", "nn", "--json", f"{tmp}/c.csv"], "unknown extension '.csv'"),
    ]
    import jax

    if not any(d.platform == "gpu" for d in jax.devices()):  # only a user error where there is no GPU
        cases.append((["train", "nn", "--device", "gpu", "--metrics", f"{tmp}/m.json"], "no gpu device"))
    cases.append((["train", "nn", "--metrics", f"{_unwritable_folder(tmp)}/m.json"], "cannot write to"))
    return cases


def _unwritable_folder(tmp):
    """A folder this process cannot create files in: a read-only one, or for root, /sys."""
    if os.geteuid() != 0:
        return tmp / "locked"
    try:
        fd, probe = tempfile.mkstemp(dir="/sys")
    except OSError:
        return "/sys"
    os.close(fd)
    os.unlink(probe)
    pytest.skip("running as root with no unwritable folder to test against")


def test_user_errors_exit_2_with_one_line_and_leave_no_file(fnnet_cli, tmp_path):
    (tmp_path / "adir.json").mkdir()
    (tmp_path / "afile").write_text("mine")
    (tmp_path / "locked").mkdir(mode=0o500)
    before = sorted(p.name for p in tmp_path.iterdir())
    for argv, message in _user_errors(tmp_path):
        code, out, err = fnnet_cli(*argv)
        lines = err.strip().splitlines()
        assert code == 2, (argv, code, err)
        assert len(lines) == 1 and message in lines[0] and lines[0].startswith("fnnet"), (argv, err)
        assert "Traceback" not in err and out == ""
        assert sorted(p.name for p in tmp_path.iterdir()) == before, argv


def test_divergence_exits_3_and_writes_nothing(fnnet_cli, tmp_path):
    metrics = tmp_path / "m.json"
    code, _, err = fnnet_cli("train", "nn", "--lr", "10", "--metrics", str(metrics), "--plot", str(tmp_path / "p.png"))
    assert code == 3
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "diverged at step" in lines[0] and "learning rate 10" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_the_help_names_the_library_s_lessons_and_imports_no_jax():
    """The parser reads the lesson ids from the records (fnnet.lessons is light), so --help needs no JAX."""
    from fnnet.cli.parser import edition_help
    from fnnet.lessons import EDITIONS

    help_text = edition_help()
    for edition in EDITIONS:
        assert ", ".join(edition_ids(edition)) in help_text
    probe = ("import contextlib, io, sys\nfrom fnnet.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
             "    main(['train', '--help'])\n"
             "print(sorted(m for m in ('jax', 'torch', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


def test_the_in_process_command_turns_the_compile_cache_off_again_when_it_ends(fnnet_cli, tmp_path, monkeypatch):
    """``fnnet_cli`` runs the command in this worker; the cache the command turns on ends with it, as it does
    when a process ends, so the tests after it run ``fit`` as a library user's process does (tests/conftest.py)."""
    import jax

    monkeypatch.setenv("FNNET_CACHE_DIR", str(tmp_path / "cache"))
    before = jax.config.jax_compilation_cache_dir
    code, _, err = fnnet_cli("train", "tensors", "--steps", "3", "--quiet", "--batch", "4", "--d-in", "6",
                             "--hidden", "5", "--d-out", "2")
    assert code == 0, err
    kept = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert any(name.startswith("jit_run_chunk") for name in kept)  # the command kept its programs
    assert jax.config.jax_compilation_cache_dir == before
    fnnet.fit("tensors", steps=3, sizes=fnnet.Sizes(4, 6, 5, 3))  # programs the command did not compile
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == kept


def test_the_command_keeps_compiled_programs_on_disk_unless_told_not_to(tmp_path):
    on, off = tmp_path / "on", tmp_path / "off"
    for folder, extra in ((on, []), (off, ["--no-compile-cache"])):
        out = subprocess.run(
            [sys.executable, "-m", "fnnet", "train", "nn", "--steps", "5", "--quiet", *TINY, *extra],
            capture_output=True, text=True, timeout=300, env={**os.environ, "FNNET_CACHE_DIR": str(folder)},
        )
        assert out.returncode == 0, out.stderr
    assert any(p.name.startswith("jit_run_chunk") for p in on.iterdir())
    # entries go through JAX's file lock (several processes may share the folder) and carry the access
    # times by which the least recently used are removed past fnnet.core.CACHE_MAX_BYTES
    assert (on / ".lockfile").exists() and any(p.name.endswith("-atime") for p in on.iterdir())
    assert not off.exists() or not any(off.iterdir())
