"""Two processes on 127.0.0.1 join one run through JAX's distributed runtime (gloo on CPU).

The processes keep their compiled programs in the test session's cache folder (``FNNET_CACHE_DIR``,
tests/conftest.py), as the processes of a run on one host share ``~/.cache/fnnet``: process 0 compiles what an
earlier pair has not. Process 1 compiles everything at every start: JAX writes entries from process 0 alone,
and a CPU program's cache key holds a device-topology fingerprint that differs between the two processes
(JAX 0.10.2; docs/guide/devices.md). Only a process that is killed on purpose runs without the folder
(``--no-compile-cache``)."""

import json
import os
import random
import shlex
import signal
import socket
import subprocess
import sys
import time

from pathlib import Path

import numpy as np
import pytest

import fnnet

LAUNCHER = str(Path(__file__).with_name("fault_launcher.py"))  # runs fnnet with a fault installed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(argv, prefix=("-m", "fnnet"), **kwargs):
    return subprocess.Popen([sys.executable, *prefix, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)


def _pair(argv_for, env_for=lambda i: None, prefix=("-m", "fnnet"), timeout=240):
    """Start processes 0 and 1 (``python -m fnnet ARGV`` by default), wait (bounded), always clean up;
    return their return codes and their (stdout, stderr)."""
    procs = [_start(argv_for(i), prefix, **({"env": env_for(i)} if env_for(i) else {})) for i in (0, 1)]
    try:
        outs = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)
    return [p.returncode for p in procs], outs


def _run_pair(argv_for, env_for=lambda i: None, prefix=("-m", "fnnet"), expect=0):
    """``_pair``, each process expected to exit ``expect``; returns their (stdout, stderr)."""
    codes, outs = _pair(argv_for, env_for, prefix)
    for code, (_, err) in zip(codes, outs):
        assert code == expect, err
    return outs


def test_two_processes_train_like_one(tmp_path):
    port = _free_port()
    common = ["train", "optim", "--steps", "200", "--init-timeout", "60",
              "--metrics", str(tmp_path / "m{process}.json"), "--plot", str(tmp_path / "curve.png")]
    flags = ["--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", "0"]
    # one compiled-program cache for both, as two processes on one host share ~/.cache/fnnet: process 0
    # writes its entries while process 1 looks up its own keys (which nobody writes), each under JAX's file lock
    cache = tmp_path / "cache"
    env = [{**os.environ, "FNNET_CACHE_DIR": str(cache)} for _ in (0, 1)]
    # process 0 takes its settings from flags, process 1 from the environment
    env[1].update({"FNNET_COORDINATOR": f"127.0.0.1:{port}", "FNNET_NUM_PROCESSES": "2", "FNNET_PROCESS_ID": "1"})
    outs = _run_pair(lambda i: common + (flags if i == 0 else []), lambda i: env[i])
    assert "optim" in outs[0][0] and "lesson" not in outs[1][0]  # only process 0 prints the table
    for _, err in outs:  # nothing but process 0's progress line: no warning (a half-read cache entry would be one)
        assert all(line.startswith("trained optim: 200 steps") for line in err.splitlines()), err
    assert (cache / ".lockfile").exists() and any(p.name.startswith("jit_run_chunk") for p in cache.iterdir())
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["cache", "curve.png", "m0.json", "m1.json"]  # process 1 writes only what names it with {process}
    first, second = (json.loads((tmp_path / f"m{i}.json").read_text())["losses"] for i in (0, 1))
    assert first == second
    alone = fnnet.fit("optim", steps=200).losses
    np.testing.assert_allclose(first[0], alone[0], rtol=1e-5)
    # same-trajectory tolerance, as for 8 devices in one process (test_devices): the cross-process sum of
    # gradients rounds differently and Adam near its minimum amplifies it (1.06e-4 at step 198 here)
    np.testing.assert_allclose(first, alone, rtol=1e-3)


@pytest.fixture(scope="module")
def lone_processes():
    """Process 0 alone and process 1 alone, each with its own coordinator address, started together: each waits
    out its 2 s ``--init-timeout`` idle, so the two waits overlap. ``{process_id: (code, stderr)}`` and the
    seconds until both had ended."""
    start = time.monotonic()
    codes, outs = _pair(lambda i: ["train", "optim", "--steps", "5", "--coordinator", f"127.0.0.1:{_free_port()}",
                                   "--num-processes", "2", "--process-id", str(i), "--init-timeout", "2"], timeout=120)
    return {str(i): (codes[i], outs[i][1]) for i in (0, 1)}, time.monotonic() - start


@pytest.mark.parametrize("process_id,message", [
    ("1", "could not reach the coordinator"),  # nothing listens at the coordinator's address
    ("0", "not all 2 processes joined"),  # the coordinator runs, but its peer never comes
])
def test_a_run_that_cannot_form_fails_in_one_line_in_bounded_time(lone_processes, process_id, message):
    ended, seconds = lone_processes
    code, err = ended[process_id]
    assert seconds < 60
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and message in lines[0], err


@pytest.mark.parametrize("argv,message", [
    (["--coordinator", "nohost"], "must be HOST:PORT"),
    (["--num-processes", "2"], "need --coordinator"),
    (["--coordinator", "127.0.0.1:1234", "--num-processes", "2", "--process-id", "2"], "must be in 0..1"),
    (["--coordinator", "127.0.0.1:1234"], "needs --num-processes"),
])
def test_bad_process_settings(fnnet_cli, monkeypatch, argv, message):
    """Checked before any process joins, so in this process: one line, exit 2."""
    for name in ("FNNET_COORDINATOR", "FNNET_NUM_PROCESSES", "FNNET_PROCESS_ID"):
        monkeypatch.delenv(name, raising=False)
    code, _, err = fnnet_cli("train", "optim", *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_two_processes_each_keep_only_their_rows_of_a_data_folder(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 8))
    y = np.tanh(x @ rng.standard_normal((8, 2)))
    folder = tmp_path / "data"
    folder.mkdir()
    np.save(folder / "x.npy", x)
    np.save(folder / "y.npy", y)
    port = _free_port()
    _run_pair(lambda i: ["train", "optim", "--steps", "200", "--lr", "3e-3", "--data", str(folder),
                         "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i),
                         "--metrics", str(tmp_path / "m{process}.json"), "--quiet"])
    doc = json.loads((tmp_path / "m0.json").read_text())
    assert doc["config"]["sizes"]["batch"] == 200  # the whole data set, though each process held 100 rows
    alone = fnnet.fit("optim", data=(x, y), steps=200, lr=3e-3).losses
    np.testing.assert_allclose(doc["losses"], alone, rtol=1e-4)


def test_process_rows_are_an_even_contiguous_share():
    from fnnet.data import process_rows

    x = np.arange(12)[:, None]
    parts = [process_rows(x, x, i, 3)[0][:, 0].tolist() for i in range(3)]
    assert parts == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    with pytest.raises(fnnet.ConfigError, match="do not split evenly over 5 processes"):
        process_rows(x, x, 0, 5)


def test_two_processes_with_minibatches_train_like_one(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 6))
    y = np.tanh(x @ rng.standard_normal((6, 2)))
    np.savez(tmp_path / "d.npz", x=x, y=y)
    port = _free_port()
    _run_pair(lambda i: ["train", "optim", "--steps", "200", "--lr", "3e-3", "--data", str(tmp_path / "d.npz"),
                         "--batch", "50", "--coordinator", f"127.0.0.1:{port}",
                         "--num-processes", "2", "--process-id", str(i), "--metrics", str(tmp_path / "m.json"),
                         "--quiet"])
    losses = json.loads((tmp_path / "m.json").read_text())["losses"]
    alone = fnnet.fit("optim", data=(x, y), batch_size=50, steps=200, lr=3e-3).losses
    np.testing.assert_allclose(losses, alone, rtol=1e-4)


OWN_MODEL = """
import json, sys
import jax, numpy as np
from fnnet.runtime.distributed import initialize
initialize(sys.argv[1], 2, int(sys.argv[2]), timeout=60)
import fnnet
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 5)); y = np.tanh(x @ rng.normal(size=(5, 2)))
own = fnnet.Model(lambda key: {"w": 0.1 * jax.random.normal(key, (5, 2))}, lambda p, x: jax.numpy.tanh(x @ p["w"]))
print(json.dumps(fnnet.fit(own, data=(x, y), loss="mse", steps=100, batch_size=16, lr=0.05).losses.tolist()))
"""


def test_your_own_model_trains_over_two_processes_like_one():
    address = f"127.0.0.1:{_free_port()}"
    outs = _run_pair(lambda i: [OWN_MODEL, address, str(i)], prefix=("-c",))
    first, second = (json.loads(out.strip().splitlines()[-1]) for out, _ in outs)
    assert first == second  # both processes hold the same replicated run
    import jax

    own = fnnet.Model(lambda key: {"w": 0.1 * jax.random.normal(key, (5, 2))}, lambda p, x: jax.numpy.tanh(x @ p["w"]))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5))
    alone = fnnet.fit(own, data=(x, np.tanh(x @ rng.normal(size=(5, 2)))), loss="mse", steps=100, batch_size=16,
                      lr=0.05).losses
    np.testing.assert_allclose(first[0], alone[0], rtol=1e-5)
    np.testing.assert_allclose(first, alone, rtol=1e-3)
    assert alone[-1] < 0.5 * alone[0]


def test_processes_started_with_other_settings_stop_at_the_start_in_one_line():
    """Different --steps used to train apart and then hang for minutes at JAX's shutdown barrier."""
    port = _free_port()
    start = time.monotonic()
    outs = _run_pair(lambda i: ["train", "optim", "--steps", "20" if i == 0 else "30", "--quiet",
                                "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)],
                     expect=2)
    assert time.monotonic() - start < 120
    for out, err in outs:
        lines = err.strip().splitlines()
        assert "lesson" not in out and len(lines) == 1 and "process 1 was started with other settings" in lines[0], err


@pytest.mark.parametrize("dies", [1, 0], ids=["worker-dies", "coordinator-dies"])
def test_a_peer_that_dies_ends_the_other_at_once_in_one_line(dies):
    """Before: the survivor waited out the dead peer's heartbeat at JAX's shutdown barrier (77 s here),
    then aborted (exit 134) with a Python traceback and 50 lines of C++ log."""
    port = _free_port()
    argv = ["train", "optim", "--steps", "4000", "--log-every", "50", "--quiet", "--no-compile-cache",
            "--init-timeout", "60", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2"]
    dying = [LAUNCHER, "die-after-sync"]  # SIGKILLs itself after its first chunk
    start = time.monotonic()
    codes, outs = _pair(lambda i: [*(dying if i == dies else ["-m", "fnnet"]), *argv, "--process-id", str(i)],
                        prefix=(), timeout=120)
    survivor = 1 - dies
    assert codes[dies] == -9
    err = outs[survivor][1]
    lines = [line for line in err.splitlines() if line.strip()]
    assert time.monotonic() - start < 60  # well before the 100 s heartbeat timeout
    assert "Traceback" not in err
    if dies == 1:
        assert codes[survivor] == 5, err
        assert len(lines) == 1 and "another process of this run stopped" in lines[0], err
        assert "process 0 of 2 stops too" in lines[0]
    else:  # the coordinator is gone: the runtime's error-polling thread sees it too and logs its fatal exit
        # (a few lines of C++ log, in about half the runs) while fnnet's line and exit 5 win the race (15 of 15
        # runs once JAX's preemption service, which also logged and sometimes aborted first, was switched off);
        # after fnnet's line stderr is closed, so the runtime's lines can only come before it
        assert codes[survivor] == 5, err
        assert lines[-1].startswith("fnnet: error: another process of this run stopped"), err


def test_sigterm_to_one_process_stops_both_at_one_step_with_one_checkpoint_and_resume_equals_the_whole_run(tmp_path):
    """Before: SIGTERM to one process was swallowed (JAX's preemption service logged it and training went on)
    or killed it, and several processes could not checkpoint at all. Now every process learns of the signal
    after the same chunk, process 0 saves there, both say so in one line and exit 143; resuming both gives
    the uninterrupted pair's curve exactly."""
    folder = tmp_path / "ck"

    def argv(metrics, steps, *more):
        port = _free_port()
        return lambda i: ["train", "nn", "--batch", "8", "--d-in", "20", "--hidden", "10", "--d-out", "3",
                          "--steps", str(steps), "--log-every", "50", "--quiet",
                          "--init-timeout", "60", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
                          "--process-id", str(i), "--metrics", str(tmp_path / f"{metrics}{{process}}.json"), *more]

    saving = ["--checkpoint-dir", str(folder), "--checkpoint-every", "1000000"]  # saved only when stopped, and at the end
    stopped = argv("stopped", 1000000, *saving)  # far more steps than the seconds the test waits
    procs = [_start(stopped(i)) for i in (0, 1)]
    try:
        deadline = time.monotonic() + 120
        while not (folder / ".fnnet-lock").is_file() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(random.uniform(0.0, 2.0))  # a random moment: compiling, training, between chunks
        assert procs[1].poll() is None, procs[1].communicate()
        procs[1].send_signal(signal.SIGTERM)  # the process that does not write the checkpoints
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    from fnnet.runtime.checkpoint import Checkpoints

    saved = Checkpoints(folder).steps()
    assert len(saved) == 1 and 0 < saved[0] and saved[0] % 50 == 0, (saved, outs)  # a chunk boundary
    for i, (p, (_, err)) in enumerate(zip(procs, outs)):
        lines = [line for line in err.splitlines() if line.strip()]
        assert p.returncode == 143 and len(lines) == 1, err
        assert f"stopped by SIGTERM (sent to process 1) at step {saved[0]}" in lines[0], err
        assert "resume with: fnnet train nn" in lines[0] and lines[0].endswith(f"--process-id {i} --metrics "
               f"{shlex.quote(str(tmp_path / 'stopped{process}.json'))} {shlex.join(saving)} --resume"), err
    assert not (tmp_path / "stopped0.json").exists()  # an interrupted run writes no metrics: the resumed one does

    steps = saved[0] + 100  # the resumed run goes on past the stop (--steps may change on resume; the config may not)
    _run_pair(argv("resumed", steps, *saving, "--resume"))
    _run_pair(argv("whole", steps))
    resumed, whole = (json.loads((tmp_path / f"{name}0.json").read_text())["losses"] for name in ("resumed", "whole"))
    assert len(resumed) == len(whole) == steps
    np.testing.assert_array_equal(resumed, whole)
    assert Checkpoints(folder).steps() == [saved[0], steps]


def test_a_checkpoint_folder_process_0_refuses_stops_every_process_in_one_line(tmp_path):
    """Only process 0 checks the folder; the others must not train on (or wait forever) when it refuses."""
    folder = tmp_path / "ck"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    port = _free_port()
    outs = _run_pair(lambda i: ["train", "nn", "--steps", "20", "--quiet", "--init-timeout", "60",
                                "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i),
                                "--checkpoint-dir", str(folder)], expect=2)
    first, second = ([line for line in err.splitlines() if line.strip()] for _, err in outs)
    assert len(first) == 1 and "holds notes.txt, which fnnet did not write" in first[0], first
    assert second == ["fnnet: error: process 0 could not use the checkpoint folder (see its error); "
                      "process 1 stops too"], second
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("other", [["--checkpoint-every", "30"], []], ids=["every", "no-folder"])
def test_processes_with_other_checkpoint_settings_stop_at_the_start_in_one_line(other, tmp_path):
    """Before: another --checkpoint-every (it sets where chunks end) or a folder on one process only left both
    waiting forever in mismatched collectives."""
    port = _free_port()

    def argv(i):
        folder = ["--checkpoint-dir", str(tmp_path / "ck"), "--checkpoint-every", "50"] if i == 0 else other
        if other:
            folder = ["--checkpoint-dir", str(tmp_path / "ck"), *(other if i == 1 else folder[2:])]
        return ["train", "optim", "--steps", "200", "--quiet", "--init-timeout", "60",
                "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i), *folder]

    start = time.monotonic()
    outs = _run_pair(argv, expect=2)
    assert time.monotonic() - start < 120
    want = "process 1 was started with other settings" if other else "--checkpoint-dir was given to some processes only"
    for _, err in outs:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and want in lines[0], err
