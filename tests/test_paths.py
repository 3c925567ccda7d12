"""Where ``fnnet train`` writes (issue 22, "output paths"): an output never lands on an input, on another output
or inside the checkpoint folder; a path the system cannot even look at is one line; a ``--data`` that is not a
file or a folder says what it is; missing parent folders are made when the run opens them, with one line, and
nothing is made when the run is refused."""

import os

import numpy as np
import pytest

import fnnet
from fnnet.data import Sizes

TINY = ["--batch", "8", "--d-in", "20", "--hidden", "10", "--d-out", "3", "--steps", "5", "--quiet"]
DATA_RUN = ["--hidden", "10", "--steps", "5", "--quiet"]  # with --data the data gives d_in, d_out and the rows
LONG = "n" * 300  # a name over the 255 bytes a file system allows


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("fnnet"), err
    return lines[0]


def refused(result) -> str:
    """The one line of a refused command (exit 2, nothing on stdout)."""
    code, out, err = result
    assert code == 2 and out == "", (code, out, err)
    return one_line(err)


def tree(folder) -> list[str]:
    """Every path under ``folder``, relative, sorted (links not followed)."""
    return sorted(os.path.relpath(os.path.join(root, name), folder)
                  for root, dirs, files in os.walk(folder) for name in dirs + files)


def data_file(path, rows=8):
    np.savez(path, x=np.ones((rows, 20), np.float32), y=np.zeros((rows, 3), np.float32))
    return path


# --- an output on an input, on another output, inside the checkpoint folder -----------------------------------


@pytest.mark.parametrize("spelling", ["same", "dotted", "linked folder"])
def test_save_onto_the_data_file_is_refused_and_the_data_is_kept(fnnet_cli, tmp_path, spelling):
    data = data_file(tmp_path / "d.npz")
    (tmp_path / "sub").mkdir()
    (tmp_path / "link").symlink_to(tmp_path)
    save = {"same": data, "dotted": tmp_path / "sub" / ".." / "d.npz", "linked folder": tmp_path / "link" / "d.npz"}
    before, files = data.read_bytes(), tree(tmp_path)
    line = refused(fnnet_cli("train", "nn", *DATA_RUN, "--data", data, "--save", save[spelling]))
    assert "--save" in line and "--data" in line and "overwrite" in line
    assert data.read_bytes() == before and tree(tmp_path) == files


def test_an_output_onto_a_file_of_the_data_folder_is_refused(fnnet_cli, tmp_path):
    """The folder's x.npy is a link to a file elsewhere: --metrics there would replace the user's x."""
    store, folder = tmp_path / "store", tmp_path / "data"
    store.mkdir(), folder.mkdir()
    np.save(folder / "y.npy", np.zeros((8, 3), np.float32))
    with open(store / "x.json", "wb") as f:
        np.save(f, np.ones((8, 20), np.float32))
    (folder / "x.npy").symlink_to(store / "x.json")
    before = (store / "x.json").read_bytes()
    line = refused(fnnet_cli("train", "nn", *DATA_RUN, "--data", folder, "--metrics", store / "x.json"))
    assert "--metrics" in line and "x.npy" in line
    assert (store / "x.json").read_bytes() == before


def test_two_outputs_on_one_file_are_refused(fnnet_cli, tmp_path):
    (tmp_path / "m.json").symlink_to(tmp_path / "p.png")
    line = refused(fnnet_cli("train", "nn", *TINY, "--metrics", tmp_path / "m.json", "--plot", tmp_path / "p.png"))
    assert "--plot" in line and "--metrics" in line and "same file" in line
    assert tree(tmp_path) == ["m.json"]


@pytest.mark.parametrize("flag,name", [("--save", "w.npz"), ("--metrics", "m.json"), ("--plot", "deeper/p.png")])
def test_an_output_inside_the_checkpoint_folder_is_refused(fnnet_cli, tmp_path, flag, name):
    """Accepted before; the next --resume then refused the folder for a file 'fnnet did not write'."""
    folder = tmp_path / "ck"
    folder.mkdir()
    (folder / "deeper").mkdir()
    line = refused(fnnet_cli("train", "nn", *TINY, "--checkpoint-dir", folder, flag, folder / name))
    assert flag in line and "inside the checkpoint folder" in line
    assert tree(tmp_path) == ["ck", "ck/deeper"]


def test_an_output_inside_the_base_checkpoint_folder_of_several_lessons_is_refused(fnnet_cli, tmp_path):
    runs = tmp_path / "runs"
    line = refused(fnnet_cli("train", "classic", *TINY, "--checkpoint-dir", runs, "--save", runs / "{lesson}.npz"))
    assert "--save" in line and "inside the checkpoint folder" in line
    assert tree(tmp_path) == []


def test_an_output_that_would_hold_the_checkpoint_folder_is_refused(fnnet_cli, tmp_path):
    line = refused(fnnet_cli("train", "nn", *TINY, "--metrics", tmp_path / "m.json",
                             "--checkpoint-dir", tmp_path / "m.json" / "ck"))
    assert "--metrics" in line and "checkpoint folder" in line
    assert tree(tmp_path) == []


# --- a path the system cannot look at: one line ------------------------------------------------------------------


@pytest.mark.parametrize("flag,name", [("--save", LONG + ".npz"), ("--metrics", LONG + ".json"),
                                       ("--plot", LONG + ".png"), ("--checkpoint-dir", LONG),
                                       ("--data", LONG + ".npz")])
def test_an_os_error_from_a_path_check_is_one_line(fnnet_cli, tmp_path, flag, name):
    line = refused(fnnet_cli("train", "nn", *TINY, flag, tmp_path / name))
    assert "name too long" in line.lower() and flag.lstrip("-").replace("-", " ")[:5] in line.replace("-", " ")
    assert tree(tmp_path) == []


# --- --data that is neither a file nor a folder ------------------------------------------------------------------


def test_data_on_a_fifo_says_what_it_is(fnnet_cli, tmp_path):
    os.mkfifo(tmp_path / "d.npz")
    line = refused(fnnet_cli("train", "nn", *DATA_RUN, "--data", tmp_path / "d.npz"))
    assert "FIFO" in line and "not a regular file" in line and "no such file" not in line


def test_data_folder_with_a_fifo_for_x_says_what_it_is(fnnet_cli, tmp_path):
    os.mkfifo(tmp_path / "x.npy")
    np.save(tmp_path / "y.npy", np.zeros((8, 3), np.float32))
    line = refused(fnnet_cli("train", "nn", *DATA_RUN, "--data", tmp_path))
    assert "x.npy" in line and "FIFO" in line and "has no" not in line


# --- missing parent folders: made when the run opens them, one line each ---------------------------------------


def test_missing_parents_are_made_when_the_run_opens_them(fnnet_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = fnnet_cli("train", "optim", *TINY, "--checkpoint-dir", "runs/optim", "--checkpoint-every", "5",
                               "--metrics", "out/m.json", "--plot", "out/plots/p.png", "--save", "w/x.npz")
    assert code == 0, err
    assert err.splitlines() == ["fnnet: made folder runs/ for the checkpoint folder runs/optim",  # as it opens
                                "fnnet: made folder w/ for --save",  # as the lesson's weights are written
                                "fnnet: made folder out/ for --metrics",  # as the files are, after training
                                "fnnet: made folder out/plots/ for --plot"]
    assert {"runs/optim/5", "out/m.json", "out/plots/p.png", "w/x.npz"} <= set(tree(tmp_path))
    code, _, err = fnnet_cli("train", "optim", *TINY[:-3], "--steps", "10", "--quiet", "--checkpoint-dir",
                             "runs/optim", "--resume")
    assert code == 0 and err == "", err  # the folder holds only what fnnet wrote, and nothing more is made


def test_a_refused_run_makes_no_folder(fnnet_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    refused(fnnet_cli("train", "nn", *TINY, "--checkpoint-dir", "runs/nn", "--metrics", "out/m.json",
                      "--save", "w/x.npz", "--plot", "plots/p.txt"))
    assert tree(tmp_path) == []
    np.savez(tmp_path / "d.npz", x=np.ones((8, 20), np.float32), y=np.zeros((7, 3), np.float32))
    # refused by fit's own checks of the first lesson, after the plan: the base folder of several lessons is
    # made only when the first lesson opens it, so a refusal there leaves nothing behind either
    for folder in ("runs", "new/runs"):  # (the base folder "runs" was made by the plan, then left behind)
        line = refused(fnnet_cli("train", "classic", *DATA_RUN, "--data", "d.npz", "--checkpoint-dir", folder))
        assert "rows" in line
        assert tree(tmp_path) == ["d.npz"]


@pytest.mark.parametrize("flag,name", [("--checkpoint-dir", "f.txt/ck"), ("--metrics", "f.txt/m.json"),
                                       ("--save", "f.txt/sub/w.npz")])
def test_a_parent_that_is_a_file_is_refused(fnnet_cli, tmp_path, flag, name):
    (tmp_path / "f.txt").write_text("mine")
    line = refused(fnnet_cli("train", "nn", *TINY, flag, tmp_path / name))
    assert flag in line or "checkpoint folder" in line
    assert "f.txt" in line and "not a folder" in line
    assert tree(tmp_path) == ["f.txt"]


def test_the_library_makes_missing_parents_of_its_checkpoint_folder_and_says_so(tmp_path, capsys):
    folder = tmp_path / "a" / "b" / "ck"
    result = fnnet.fit("nn", steps=5, sizes=Sizes(8, 20, 10, 3), checkpoint_dir=folder, checkpoint_every=5,
                       progress=False)
    assert len(result.losses) == 5 and (folder / "5").is_dir()
    err = capsys.readouterr().err
    assert err.splitlines() == [f"fnnet: made folder {tmp_path / 'a' / 'b'}/ for the checkpoint folder {folder}"]


def test_a_run_that_diverges_at_once_leaves_no_folder_it_made(tmp_path, capsys):
    from fnnet.errors import DivergenceError

    with pytest.raises(DivergenceError):
        fnnet.fit("nn", steps=5, lr=1e6, sizes=Sizes(8, 20, 10, 3), checkpoint_dir=tmp_path / "a" / "ck",
                  progress=False)
    assert tree(tmp_path) == []


def test_with_two_processes_only_process_0_makes_the_folders_and_says_so(tmp_path):
    """Process 0 writes the checkpoints and --save; the other makes (and names) only a folder of its own
    {process} file."""
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def argv(i):
        return [sys.executable, "-m", "fnnet", "train", "nn", *TINY, "--init-timeout", "60",
                "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i),
                "--checkpoint-dir", "runs/nn", "--save", "w/x.npz", "--metrics", "m{process}/m.json"]

    procs = [subprocess.Popen(argv(i), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in (0, 1)]
    try:
        outs = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)
    assert [p.returncode for p in procs] == [0, 0], outs
    assert outs[0][1].splitlines() == ["fnnet: made folder runs/ for the checkpoint folder runs/nn",
                                       "fnnet: made folder w/ for --save", "fnnet: made folder m0/ for --metrics"]
    assert outs[1][1].splitlines() == ["fnnet: made folder m1/ for --metrics"]
    assert {"runs/nn/5", "w/x.npz", "m0/m.json", "m1/m.json"} <= set(tree(tmp_path))
