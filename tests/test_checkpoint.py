"""Checkpoints: exact resume, survival of SIGKILL at any moment, damaged checkpoints, divergence."""

import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import fnnet
from fnnet import ConfigError
from fnnet.runtime.checkpoint import Checkpoints, CheckpointWarning

from conftest import SMALL

BASE = ["train", "control_flow", "--steps", "200", "--log-every", "20",
        "--batch", "8", "--d-in", "20", "--hidden", "10", "--d-out", "3", "--quiet"]
RUN = BASE + ["--checkpoint-every", "40"]


LAUNCHER = str(Path(__file__).with_name("fault_launcher.py"))


def fnnet_cmd(*argv, fault=None):
    """``python -m fnnet ARGV`` in a process of its own; with ``fault``, through the tests' fault launcher."""
    command = [LAUNCHER, fault] if fault else ["-m", "fnnet"]
    return subprocess.run([sys.executable, *command, *argv], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def reference():
    """The uninterrupted run's losses (as ``--metrics`` writes them), computed in this process."""
    return fnnet.fit("control_flow", steps=200, log_every=20, sizes=SMALL).losses.tolist()


@pytest.mark.parametrize("lesson_id", ["numpy", "optim", "control_flow"])
def test_resume_ends_bit_for_bit_where_an_uninterrupted_run_ends(lesson_id, tmp_path):
    whole = fnnet.fit(lesson_id, steps=120, sizes=SMALL, log_every=20)
    fnnet.fit(lesson_id, steps=60, sizes=SMALL, log_every=20, checkpoint_dir=tmp_path, checkpoint_every=40)
    assert Checkpoints(tmp_path).steps() == [40, 60]
    resumed = fnnet.fit(lesson_id, steps=120, sizes=SMALL, log_every=20, checkpoint_dir=tmp_path, resume=True)
    np.testing.assert_array_equal(resumed.losses, whole.losses)
    for a, b in zip(jax.tree.leaves(resumed.params), jax.tree.leaves(whole.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("fault,saved_before_kill", [
    ("before-save:40", []),  # killed before the first checkpoint
    ("during-save:80", [40]),  # killed while orbax writes step 80
    ("after-save:120", [40, 80, 120]),  # killed between saves
])
def test_sigkill_then_resume_equals_the_uninterrupted_run(fault, saved_before_kill, reference, fnnet_cli, tmp_path):
    folder = tmp_path / "ckpt"
    killed = fnnet_cmd(*RUN, "--checkpoint-dir", str(folder), fault=fault)
    assert killed.returncode == -9, killed.stderr
    mid_write = [p.name for p in folder.iterdir() if "tmp" in p.name] if folder.exists() else []
    finished = Checkpoints(folder).steps() if folder.exists() else []
    # a kill during the write of step 80 leaves it unfinished (rarely the write wins the race)
    assert finished == saved_before_kill or (fault.startswith("during") and finished == saved_before_kill + [80])
    if finished == saved_before_kill and fault.startswith("during"):
        assert mid_write  # the half-written checkpoint was there, under a temporary name
    metrics = tmp_path / "m.json"
    if saved_before_kill:  # only the killed run needs a process of its own
        code, _, err = fnnet_cli(*RUN, "--checkpoint-dir", str(folder), "--resume", "--metrics", str(metrics))
    else:  # nothing was saved: resuming is a user error, starting again is the way
        code, _, err = fnnet_cli(*RUN, "--checkpoint-dir", str(folder), "--resume")
        assert code == 2 and "nothing to resume" in err
        code, _, err = fnnet_cli(*RUN, "--checkpoint-dir", str(folder), "--metrics", str(metrics))
    assert code == 0, err
    assert json.loads(metrics.read_text())["losses"] == reference


def _finished_run(folder):
    from command import run_main as main

    assert main([*RUN, "--checkpoint-dir", str(folder)]) == 0
    assert Checkpoints(folder).steps() == [120, 160, 200]  # the newest three are kept


def _data_files(step_dir: Path):
    """The files holding the arrays (tensorstore's data chunks under .../d/)."""
    files = [p for p in step_dir.rglob("*") if p.is_file() and p.parent.name == "d"]
    assert files
    return files


def _truncate_largest_file(step_dir: Path):
    """Truncate the array data of a checkpoint to half its size, as a disk-full or killed copy would."""
    for p in _data_files(step_dir):
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


@pytest.mark.parametrize("damage", ["truncate", "delete-state", "flip-bits"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(damage, reference, fnnet_cli, tmp_path):
    folder = tmp_path / "ckpt"
    _finished_run(folder)
    newest = folder / "200"
    if damage == "truncate":
        _truncate_largest_file(newest)
    elif damage == "delete-state":
        import shutil

        shutil.rmtree(newest / "state")
    else:  # same size, different bytes: only the checksum can tell
        for data in _data_files(newest):
            raw = bytearray(data.read_bytes())
            raw[len(raw) // 2] ^= 0xFF
            data.write_bytes(bytes(raw))
    metrics = tmp_path / "m.json"
    argv = [*RUN, "--checkpoint-dir", str(folder), "--resume", "--metrics", str(metrics)]
    if damage == "flip-bits":  # one as a real command: the warning is one line on stderr
        out = fnnet_cmd(*argv)
        assert out.returncode == 0, out.stderr
        warnings_ = [line for line in out.stderr.splitlines() if line]
        assert len(warnings_) == 1 and "warning: checkpoint at step 200" in warnings_[0] and "damaged" in warnings_[0]
        assert "Traceback" not in out.stderr
    else:
        with pytest.warns(CheckpointWarning, match="checkpoint at step 200 .* damaged"):
            code, _, err = fnnet_cli(*argv)
        assert code == 0 and not err.strip(), err
    assert json.loads(metrics.read_text())["losses"] == reference
    assert (folder / "damaged-200").is_dir()


def test_every_checkpoint_damaged_is_one_clear_error(fnnet_cli, tmp_path):
    folder = tmp_path / "ckpt"
    _finished_run(folder)
    for step in (120, 160, 200):
        _truncate_largest_file(folder / str(step))
    code, _, err = fnnet_cli(*RUN, "--checkpoint-dir", str(folder), "--resume")
    errors = [line for line in err.splitlines() if "error" in line]
    assert code == 2 and len(errors) == 1 and "every one is damaged" in errors[0]
    assert "Traceback" not in err
    assert Checkpoints(folder).steps() == [120, 160, 200]  # nothing moved when nothing could be resumed


def test_resuming_another_configuration_is_refused_and_changes_nothing(fnnet_cli, tmp_path):
    folder = tmp_path / "ckpt"
    _finished_run(folder)
    files = lambda: sorted((p.relative_to(folder), p.stat().st_mtime_ns) for p in folder.rglob("*")  # noqa: E731
                           if p.name != ".fnnet-lock")  # the lock records who last held the folder
    before = files()
    for change, text in ((["--seed", "1"], "seed: checkpoint 0, now 1"),
                         (["--optimizer", "adam"], "optimizer: checkpoint momentum, now adam"),
                         (["--hidden", "11"], "sizes")):
        argv = [a for a in RUN]
        if change[0] == "--hidden":
            argv[argv.index("--hidden") + 1] = "11"
            change = []
        code, _, err = fnnet_cli(*argv, *change, "--checkpoint-dir", str(folder), "--resume")
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and "belong to another run" in lines[0] and text in lines[0]
    assert files() == before


def test_divergence_keeps_the_last_finite_checkpoint(fnnet_cli, tmp_path):
    folder = tmp_path / "ckpt"
    with pytest.raises(fnnet.DivergenceError) as info:
        fnnet.fit("control_flow", lr=1e-2, steps=400, sizes=SMALL, log_every=10, checkpoint_dir=folder,
                  checkpoint_every=10)
    steps = Checkpoints(folder).steps()
    assert steps and steps[-1] <= info.value.step < steps[-1] + 10  # the last chunk that stayed finite
    state_losses = fnnet.fit("control_flow", lr=1e-2, steps=steps[-1], sizes=SMALL, log_every=10,
                             checkpoint_dir=folder, resume=True).losses
    assert np.isfinite(state_losses).all() and len(state_losses) == steps[-1]
    code, _, err = fnnet_cli("train", "control_flow", "--lr", "0.01", "--steps", "400", "--log-every", "10", "--batch",
                             "8", "--d-in", "20", "--hidden", "10", "--d-out", "3", "--quiet",
                             "--checkpoint-dir", str(tmp_path / "cli"))
    assert code == 3 and "diverged at step" in err and "try a smaller --lr" in err
    assert Checkpoints(tmp_path / "cli").steps()


def test_library_warns_with_a_checkpoint_warning(tmp_path):
    fnnet.fit("nn", steps=40, sizes=SMALL, checkpoint_dir=tmp_path, checkpoint_every=20)
    _truncate_largest_file(tmp_path / "40")
    with pytest.warns(CheckpointWarning, match="step 40"):
        result = fnnet.fit("nn", steps=40, sizes=SMALL, checkpoint_dir=tmp_path, resume=True)
    assert len(result.losses) == 40


@pytest.mark.parametrize("kwargs,message", [
    (dict(resume=True), "resume needs a checkpoint folder"),
    (dict(checkpoint_every=10), "checkpoint_every needs a checkpoint folder"),
    (dict(checkpoint_dir="{tmp}/none", resume=True), "nothing to resume"),
    (dict(checkpoint_dir="{tmp}/file.txt"), "is a file"),
    (dict(checkpoint_dir="{tmp}/file.txt/sub"), "is not a folder"),
    (dict(checkpoint_dir="{tmp}/ok", checkpoint_every=0), "checkpoint_every must be a positive integer"),
])
def test_bad_checkpoint_arguments(kwargs, message, tmp_path):
    (tmp_path / "file.txt").write_text("x")
    kwargs = {k: v.format(tmp=tmp_path) if isinstance(v, str) else v for k, v in kwargs.items()}
    with pytest.raises(ConfigError, match=message):
        fnnet.fit("nn", steps=10, sizes=SMALL, **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]  # nothing made


def test_missing_parents_of_the_checkpoint_folder_are_made_and_said(tmp_path, capsys):
    folder = tmp_path / "runs" / "deep" / "nn"
    result = fnnet.fit("nn", steps=10, sizes=SMALL, checkpoint_dir=folder, progress=False)
    assert len(result.losses) == 10 and folder.is_dir()
    assert "made folder" in capsys.readouterr().err
