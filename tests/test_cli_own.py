"""The command's side of issue 'your own model': --version, did-you-mean, per-optimizer rates, --save."""

import numpy as np
import pytest

import fnnet

TINY = ["--batch", "8", "--d-in", "20", "--hidden", "10", "--d-out", "3", "--quiet"]


def test_version(fnnet_cli):
    code, out, _ = fnnet_cli("--version")
    assert code == 0 and out.strip() == f"fnnet {fnnet.__version__}"


def test_a_near_miss_lesson_id_gets_a_suggestion(fnnet_cli):
    code, out, err = fnnet_cli("train", "optm", *TINY)
    assert code == 2 and out == ""
    assert "did you mean 'optim'?" in err and len(err.strip().splitlines()) == 1


def test_optimizer_without_lr_runs_at_its_own_rate(fnnet_cli, tmp_path):
    metrics = tmp_path / "m.json"
    code, out, _ = fnnet_cli("train", "tensors", "--optimizer", "adam", "--steps", "60", *TINY, "--metrics", metrics)
    assert code == 0
    import json

    run = json.loads(metrics.read_text())
    assert run["config"]["lr"] == 0.01 and run["config"]["optimizer"] == "adam"
    assert run["losses"][-1] < 0.1 * run["losses"][0]  # at the SGD rate 1e-6 Adam would not move (> 0.99)


def test_save_writes_torch_named_weights_that_numpy_and_torch_load(fnnet_cli, tmp_path):
    path = tmp_path / "nn.npz"
    code, out, _ = fnnet_cli("train", "nn", "--steps", "20", *TINY, "--save", path)
    assert code == 0 and f"weights written to {path}" in out
    saved = dict(np.load(path))
    assert sorted(saved) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    assert saved["0.weight"].shape == (10, 20)  # torch's (out, in) layout
    trained = fnnet.fit("nn", steps=20, sizes=(8, 20, 10, 3)).params
    np.testing.assert_array_equal(saved["0.weight"], np.asarray(trained["layers"][0]["kernel"]).T)
    torch = pytest.importorskip("torch") if not __import__("os").environ.get("CI") else __import__("torch")
    from fnnet.parity.compare import to_torch

    module = to_torch("nn", saved)
    np.testing.assert_array_equal(module[2].bias.detach().numpy(), saved["2.bias"])
    assert isinstance(module, torch.nn.Sequential)


def test_save_with_several_lessons_needs_a_placeholder(fnnet_cli, tmp_path):
    code, _, err = fnnet_cli("train", "classic", "--steps", "5", *TINY, "--save", tmp_path / "w.npz")
    assert code == 2 and "{lesson}" in err
    assert list(tmp_path.iterdir()) == []
    code, out, _ = fnnet_cli("train", "classic", "--steps", "5", *TINY, "--save", tmp_path / "w-{lesson}.npz")
    assert code == 0 and sorted(p.name for p in tmp_path.iterdir()) == sorted(f"w-{i}.npz" for i in fnnet.lessons.edition_ids("classic"))


def test_save_refuses_another_extension_before_training(fnnet_cli, tmp_path):
    code, out, err = fnnet_cli("train", "nn", *TINY, "--save", tmp_path / "w.pt")
    assert code == 2 and "--save: unknown extension '.pt'" in err and out == ""
