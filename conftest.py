"""Collection rules for the doctests in src/fnnet.

The PyTorch modules need torch. Without it (a user who did not install the
``compare`` extra) their doctests are not collected; under CI (``CI`` set) they
always are, so a missing torch fails the run instead of passing it quietly.
"""

import importlib.util
import os

collect_ignore = []
if importlib.util.find_spec("torch") is None and not os.environ.get("CI"):
    collect_ignore += ["src/fnnet/parity"]


# The daily tier, `python -m pytest -m "not slow"`, stays within a minute on two cores: what trains long, starts
# processes, executes notebooks or builds the site is marked slow here, in one list (the README's full command
# runs everything). A node id that starts with one of these is slow.
SLOW = (
    "tests/test_notebooks.py", "tests/test_site.py", "tests/test_multihost.py", "tests/test_faults.py",
    "tests/test_checkpoint.py", "tests/test_properties.py", "tests/test_four_codings.py", "README.md", "docs/",
    "tests/test_live_proof.py::test_a_downloaded", "tests/test_devices.py", "tests/test_lessons.py::test_every_lesson_converges",
    "tests/test_compare.py::test_float32_drift_is_rounding", "tests/test_cli.py::test_train_all_writes_json_metrics",
    "tests/test_paths.py::test_with_two_processes", "tests/test_bench.py::test_bench_command_smoke",
    "tests/test_own_model.py::test_an_optax_schedule_as_lr_equals", "tests/test_train.py::test_chunking_does_not",
    "tests/test_sine.py::test_sine_optim_is_compared_step_by_step", "tests/test_data.py::test_train_on_an_npz_file",
    "tests/test_sine.py::test_the_extra_terms_schedule_is_what_fit_draws",
    "tests/test_compare.py::test_compare_command_exits_1_on_an_injected_mismatch",
    "tests/test_compare.py::test_compare_times_both_sides_repeatedly",
    "tests/test_compare.py::test_parity[", "tests/test_compare.py::test_compare_command_writes_json_and_plot",
    "tests/test_compare.py::test_control_flow_agrees_in_float64",
    "tests/test_compare.py::test_without_torch_fnnet_works_and_compare_says_how_to_get_it",
    "tests/test_compare.py::test_torch_reference_momentum_matches_the_tutorial_era_semantics",
    "tests/test_cli.py::test_the_command_keeps_compiled_programs_on_disk_unless_told_not_to",
    "tests/test_cli.py::test_python_dash_m_and_the_console_script_agree",
    "tests/test_cli_own.py::test_save_with_several_lessons_needs_a_placeholder",
    "tests/test_data.py::test_minibatch_", "tests/test_data.py::test_the_compiled_loop_takes_the_rows_minibatch_describes",
    "tests/test_dynamic.py::test_switch_forward_equals_fixed_depth_forward",
    "tests/test_dynamic.py::test_shared_layer_", "tests/test_dynamic.py::test_compiled_loop_uses_the_per_step_depth",
    "tests/test_sine.py::test_train_sine_and_all_and_the_default", "tests/test_sine.py::test_every_optimizer_converges",
    "tests/test_sine.py::test_parity_with_the_tutorials_pytorch", "tests/test_sine.py::test_compare_in_float64",
    "tests/test_sine.py::test_every_sine_lesson_reaches", "tests/test_sine.py::test_rmsprop_has_a_default_rate",
    "tests/test_own_model.py::test_sweep_takes_your_model", "tests/test_own_model.py::test_nnx_mlp_",
    "tests/test_own_model.py::test_an_optimizer_without_lr",
    "tests/test_sweep.py::test_sweep_equals_fit_pair_by_pair", "tests/test_sweep.py::test_sweep_command",
    "tests/test_functional.py::test_custom_function_gradient_equals_autograd",
    "tests/test_functional.py::test_manual_grads_equals_jax_grad", "tests/test_functional.py::test_my_relu_passes_check",
    "tests/test_bench.py::test_targets_and_strict_flags", "tests/test_bench.py::test_flop_count_matches",
    "tests/test_lessons.py::test_same_seed_same_losses",
    "src/fnnet/training/fit.py::fnnet.training.fit.fit", "src/fnnet/parity/compare.py::",
    "src/fnnet/training/core.py::fnnet.training.core.Train", "src/fnnet/__init__.py::fnnet",
    "src/fnnet/training/config.py::fnnet.training.config.RunConfig.record",
)


# xdist hands each worker a file (or a test class) at a time, in collection order (--no-loadscope-reorder in
# pyproject.toml): the longest start first, so that the two workers finish together, the short ones filling in
# at the end (seconds on 2 cores, 2026-12-06: the notebooks ~105, multihost ~82, site ~70, compare ~44, sine ~35,
# faults ~32, own model ~24, checkpoint ~17, devices ~16). The rest keep their order: tests/, then the doctests.
LONGEST_FIRST = (
    "tests/test_notebooks.py::TestPages", "tests/test_multihost.py", "tests/test_site.py", "tests/test_compare.py",
    "tests/test_sine.py", "tests/test_faults.py", "tests/test_own_model.py", "tests/test_checkpoint.py",
    "tests/test_devices.py",
)


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        if item.nodeid.startswith(SLOW):
            item.add_marker(pytest.mark.slow)
    rank = {prefix: i for i, prefix in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: next((rank[p] for p in LONGEST_FIRST if item.nodeid.startswith(p)), len(rank)))
