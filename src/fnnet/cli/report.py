"""What a run leaves behind: metrics files, loss-curve plots and the summary table.

Output paths are checked before any training starts (``check_output_path``), and
every file is written under a temporary name in the same folder and renamed into
place, so a failed or interrupted run never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import secrets
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from fnnet.errors import ConfigError, StorageError, write_refused
from fnnet.runtime.checkpoint_folder import check_parents, nearest_existing, path_error
from fnnet.training.fit import FitResult

METRICS_FORMATS = (".json", ".csv")
PLOT_FORMATS = (".png", ".svg", ".pdf")


def check_output_path(path: str | os.PathLike, formats: Sequence[str], what: str) -> Path:
    """Return ``path`` if a file of one of ``formats`` can be written there, else raise ConfigError.

    The folders above it may be missing where they can be made (the nearest
    existing one is a folder this process may write in); nothing is made here.

    Examples:
      >>> check_output_path("curve.png", PLOT_FORMATS, "--plot").name
      'curve.png'
      >>> check_output_path("curve.txt", PLOT_FORMATS, "--plot")
      Traceback (most recent call last):
      ...
      fnnet.errors.ConfigError: --plot: unknown extension '.txt' in 'curve.txt'; expected one of .png, .svg, .pdf
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in formats:
        raise ConfigError(
            f"{what}: unknown extension {suffix!r} in {str(path)!r}; expected one of {', '.join(formats)}"
        )
    try:  # a path the system will not look at (a name over 255 bytes): one line, not a traceback
        if path.is_dir():
            raise ConfigError(f"{what}: {str(path)!r} is a directory; expected a file name")
        check_parents(path, f"{what} {str(path)!r}")  # missing folders: made when written (cli.paths.make_parents)
        folder = nearest_existing(path.parent)
        exists = path.exists()
    except OSError as err:
        raise path_error(err, f"{what} {str(path)!r}") from None
    try:  # ask the file system itself: os.access says yes to root even where writing fails
        fd, probe = tempfile.mkstemp(prefix=".fnnet-probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise write_refused(err, f"{what}: cannot write to {str(path)!r} ({err.strerror or err})") from None
    if exists and not os.access(path, os.W_OK):
        raise ConfigError(f"{what}: cannot write to {str(path)!r} (the file is read-only)")
    return path


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The file gets the permissions the umask allows (as ``open`` would give it),
    not ``mkstemp``'s 0600. A write the file system refuses (a full disk, a
    read-only folder) raises ``StorageError`` naming the file, and leaves
    neither the temporary file nor a changed ``path``.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    name = path.name if len(path.name.encode()) <= 200 else "fnnet-output"  # the temporary name stays legal
    for _ in range(100):
        tmp = folder / f".{name}.{os.getpid()}.{secrets.token_hex(4)}{path.suffix}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
        except OSError as err:
            raise StorageError(f"could not write {str(path)!r} ({err.strerror or err})") from None
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError) and not isinstance(err, StorageError):
            raise StorageError(f"could not write {str(path)!r} ({err.strerror or err}); "
                               "nothing was changed there") from None
        raise


def _json_float(v: float):
    return float(v) if math.isfinite(v) else None


def record(result: FitResult) -> dict:
    """A run as a JSON-ready dict: lesson, config, losses, compile_seconds, run_seconds.

    Examples:
      >>> import numpy as np
      >>> r = FitResult("nn", None, np.array([2.0, 1.0]), 0.5, 0.01, {"steps": 2})
      >>> record(r)["losses"]
      [2.0, 1.0]
    """
    return {
        "lesson": result.lesson,
        "config": result.config,
        "losses": [_json_float(v) for v in result.losses.tolist()],
        "compile_seconds": result.compile_seconds,
        "run_seconds": result.run_seconds,
    }


def write_json(path: Path, doc) -> None:
    """Write ``doc`` as indented JSON to ``path``, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc, indent=1) + "\n")


def write_metrics(path: Path, results: Sequence[FitResult]) -> None:
    """Write ``results`` to ``path`` as JSON or CSV, chosen by its extension.

    JSON: one run's record, or ``{"lessons": [records]}`` for several. CSV:
    ``step,loss`` for one run, ``lesson,step,loss`` for several.
    """
    if path.suffix.lower() == ".json":
        write_json(path, record(results[0]) if len(results) == 1 else {"lessons": [record(r) for r in results]})
        return
    several = len(results) > 1
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["lesson", "step", "loss"] if several else ["step", "loss"])
        for r in results:
            for step, loss in enumerate(r.losses.tolist()):
                writer.writerow([r.lesson, step, repr(loss)] if several else [step, repr(loss)])


def write_plot(path: Path, results: Sequence[FitResult]) -> None:
    """Plot the loss curves of ``results`` on one log-scale axis and save to ``path``.

    When some of them are sine lessons, a second panel draws sin(x) and each
    fitted polynomial over [-pi, pi] and a little beyond (where a cubic leaves sin(x)).
    """
    from fnnet.lessons import LESSONS

    plt = _pyplot()
    sine = [r for r in results if r.lesson in LESSONS and LESSONS[r.lesson].edition == "sine"]
    if sine:
        fig, (ax, fit_ax) = plt.subplots(1, 2, figsize=(13, 4.5), constrained_layout=True)
        _sine_panel(fit_ax, sine)
    else:
        fig, ax = plt.subplots(figsize=(7.5, 4.5), constrained_layout=True)
    styles = ["-", "--", ":", "-."]  # lessons that agree lie on each other; dashes keep both visible
    for i, r in enumerate(results):
        cfg = r.config
        ax.plot(r.losses, linestyle=styles[i % len(styles)], label=f"{r.lesson} ({cfg['optimizer']}, lr {cfg['lr']:g})" if cfg.get("lr") else r.lesson)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (sum of squared errors)")
    ax.set_title("fnnet: loss per step" if len(results) > 1 else f"fnnet {results[0].lesson}: loss per step")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small")
    _save(fig, path)


def _sine_panel(ax, results) -> None:
    from fnnet.lessons.sine import curve

    x = np.linspace(-1.25 * math.pi, 1.25 * math.pi, 500)
    ax.axvspan(-math.pi, math.pi, color="0.93", zorder=0, label="the data: [-pi, pi]")
    ax.plot(x, np.sin(x), color="black", linewidth=2.5, label="sin(x)")
    styles = ["-", "--", ":", "-."]
    for i, r in enumerate(results):
        ax.plot(x, curve(r.lesson, r.params, x), linestyle=styles[i % len(styles)], label=r.lesson)
    ax.set_ylim(-2.5, 2.5)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title("sin(x) and the fitted polynomials")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format=path.suffix.lstrip(".").lower())
    plt.close(fig)


def _is_number(text: str) -> bool:
    try:
        float(str(text).replace(",", ""))
    except ValueError:
        return text == "-"
    return True


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table: numeric columns right-aligned, the others left-aligned.

    Examples:
      >>> print(format_table(["name", "n"], [["x", "1"], ["yy", "22"]]))
      name   n
      ----  --
      x      1
      yy    22
    """
    columns = list(zip(headers, *rows))
    widths = [max(len(str(c)) for c in col) for col in columns]
    numeric = [bool(rows) and all(_is_number(c) for c in col[1:]) for col in columns]

    def line(cells):
        return "  ".join(
            str(c).rjust(w) if num else str(c).ljust(w) for c, w, num in zip(cells, widths, numeric)
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def summary_table(results: Sequence[FitResult]) -> str:
    """The table ``fnnet train`` prints: lesson, optimizer, lr, first/last loss, steps/s, compile s."""
    rows = []
    for r in results:
        lr = r.config.get("lr")
        rows.append([
            r.lesson,
            r.config["optimizer"],
            "-" if lr is None else f"{lr:g}",
            f"{r.losses[0]:.6g}",
            f"{r.losses[-1]:.4g}",
            f"{r.steps_per_second:,.0f}",
            f"{r.compile_seconds:.2f}",
        ])
    return format_table(["lesson", "optimizer", "lr", "first loss", "last loss", "steps/s", "compile s"], rows)


def _ms(runs, fallback_seconds, steps) -> str:
    """Median ms/step of repeated runs with their spread ((max - min) / median), or the one run's."""
    if len(runs) < 2:
        return f"{1e3 * fallback_seconds / steps:.3f}"
    med = sorted(runs)[len(runs) // 2] if len(runs) % 2 else sum(sorted(runs)[len(runs) // 2 - 1:][:2]) / 2
    return f"{1e3 * med / steps:.3f} ±{50 * (max(runs) - min(runs)) / med:.0f}%"


def compare_table(checks) -> str:
    """The table ``fnnet compare`` prints, one row per lesson (``fnnet.compare.Check`` objects).

    ms/step is the median of the timed runs of each side with ± half their
    range as a percent of it (one run's time when not repeated); torch runs
    with the thread count shown.
    """
    rows = []
    for c in checks:
        f32 = c.f32
        rows.append([
            c.f32.lesson,
            f"{f32.torch_losses[0]:.6g}", f"{f32.jax_losses[0]:.6g}",
            f"{f32.torch_losses[-1]:.4g}", f"{f32.jax_losses[-1]:.4g}",
            f"{f32.loss_diff:.1e}", f"{f32.grad_diff:.1e}",
            "-" if c.f64 is None else f"{c.f64.loss_diff:.1e}",
            _ms(f32.torch_runs, f32.torch_seconds, f32.steps), str(f32.torch_threads),
            _ms(f32.jax_runs, f32.jax_seconds, f32.steps),
            c.verdict,
        ])
    headers = ["lesson", "torch first", "jax first", "torch last", "jax last", "loss diff", "grad diff",
               "f64 loss diff", "torch ms/step", "threads", "jax ms/step", "verdict"]
    return format_table(headers, rows)


def write_compare_plot(path: Path, checks) -> None:
    """One panel per lesson: the PyTorch curve and the fnnet curve on a log scale."""
    from fnnet.lessons import LESSONS

    plt = _pyplot()
    cols = min(4, len(checks))
    rows = -(-len(checks) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), squeeze=False, constrained_layout=True)
    for ax, c in zip(axes.flat, checks):
        comp = c.f32
        ax.plot(comp.torch_losses, color="#ee4c2c", linewidth=2.5, alpha=0.6, label="PyTorch")
        ax.plot(comp.jax_losses, color="#1f4e9c", linewidth=1.0, linestyle="--", label="fnnet (JAX)")
        ax.set_yscale("log")
        ax.set_title(f"{comp.lesson}: {c.verdict}", fontsize="medium", color="black" if c.ok else "red")
        ax.set_xlabel("step", fontsize="small")
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[len(checks):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize="small")
    dtypes = {c.f32.dtype for c in checks if not LESSONS[c.f32.lesson].in_numpy} or {"float64"}
    precision = "/".join(sorted(dtypes)) + (", numpy lesson float64" if len(checks) > 1 and dtypes != {"float64"} else "")
    fig.suptitle(f"PyTorch vs fnnet from the same start ({precision}): loss per step")
    _save(fig, path)


def sweep_table(result) -> str:
    """The table ``fnnet sweep`` prints: per learning rate, the final loss over seeds (``SweepResult``)."""
    rows = []
    for i, lr in enumerate(result.lrs):
        final = result.final[i]
        diverged = int(result.diverged[i].sum())
        if diverged:
            summary = ["-", "-", "-"]
        else:
            summary = [f"{final.mean():.4g}", f"{final.std():.2g}", f"{final.min():.4g}"]
        best = "<- best" if result.best_lr == lr else ""
        rows.append([f"{lr:g}", *summary, f"{diverged}/{len(result.seeds)}", best])
    return format_table(["lr", "final loss mean", "± std", "min", "diverged", ""], rows)


def write_sweep_plot(path: Path, result) -> None:
    """Every run's loss curve, coloured by learning rate, on a log scale."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5), constrained_layout=True)
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(result.lrs)))
    for i, lr in enumerate(result.lrs):
        for j in range(len(result.seeds)):
            ax.plot(result.losses[i, j], color=colors[i], alpha=0.6, linewidth=1,
                    label=f"lr {lr:g}" if j == 0 else None)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (sum of squared errors)")
    ax.set_title(f"fnnet sweep {result.lesson}: {len(result.lrs)} learning rates × {len(result.seeds)} seeds, one program")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    _save(fig, path)


def _spread(s: dict) -> str:
    return f"{100 * s['spread']:.0f}%"


def _ratio(s: dict | None) -> str:
    if s is None:
        return "-"
    return f"{s['median']:.2f}x [{s['min']:.2f}-{s['max']:.2f}]"


def _percent(value: float) -> str:
    """A percent of a measured peak; above 100 it is not a result but a sign the peak was measured badly."""
    return f"{value:.0f}%" if value <= 100 else "busy"


def bench_tables(doc: dict) -> str:
    """The tables ``fnnet bench`` prints, from ``fnnet.bench.run_bench``'s dict.

    Times are min, median and spread ((max - min) / median) over the rounds;
    ratios are medians of per-round ratios with their [min-max]. A percent of
    peak above 100 is printed as "busy", never as a number.
    """
    out = _bench_header(doc) + [""] + _bench_results(doc)
    if "sweep" in doc:
        out += ["", _bench_sweep(doc["sweep"])]
    if "processes" in doc:
        out += ["", format_table(["whole process", "seconds min", "median", "spread", "vs torch script"], [
            [name, f"{p['seconds']['min']:.2f}", f"{p['seconds']['median']:.2f}", _spread(p["seconds"]),
             _ratio(p["ratio_to_torch_script"])]
            for name, p in doc["processes"].items()
        ])]
    if doc.get("targets"):
        out += ["", format_table(["target", "wanted", "measured (median)", "met"], [
            [t["target"], t["wanted"], f"{t['measured']:.2f}", "yes" if t["met"] else "NO"] for t in doc["targets"]
        ])]
    if doc.get("reliable") is False:
        out += ["", "machine busy, not reliable: " + "; ".join(doc["busy"])]
    return "\n".join(out)


def _bench_header(doc: dict) -> list[str]:
    """The lines above the tables: the machine, its threads, the matmul peak."""
    from fnnet.cli.bench import PEAK_FRAMEWORKS

    peak = doc["peak"]
    machine = doc["machine"]
    threads = machine["threads"]
    blas = ", ".join(f"{b['library']} {b['kernel']} x{b['threads']}" for b in threads["numpy_blas"]) or "?"
    load = machine.get("load_average_1m", {})
    load_text = "" if load.get("before") is None else f"; 1-min load average {load['before']:.1f} before, {load['after']:.1f} after"
    chosen = _threads_chosen(doc)
    medians = ", ".join(f"{name} {peak[name]['median']:.0f}" for name in PEAK_FRAMEWORKS)
    return [
        f"machine: {machine['cpus']} CPUs{load_text}; {machine.get('date', '')}",
        f"threads: XLA {threads['xla_cpu']}; the peak: all cores (NumPy BLAS {blas})"
        + (f"; the faster of 1 and {machine['cpus']} threads: " + "; ".join(chosen) if chosen else ""),
        f"fp32 matmul peak ({peak['n']}x{peak['n']}): best {peak['gflops']:.0f} GFLOP/s (median {medians}); "
        f"{doc['repeats']} rounds, every item once per round, interleaved",
    ]


def _threads_chosen(doc: dict) -> list[str]:
    """Per workload, the threads torch and NumPy's BLAS ran with, and the ms/step of each count tried."""
    chosen = []
    for name, w in doc["workloads"].items():
        tt = w.get("torch_threads")
        if tt:
            tried = ", ".join(f"{k}: {1e3 * v['median'] / tt['steps']:.3f}" for k, v in tt["tried"].items())
            chosen.append(f"torch on {name}: {tt['threads']} (ms/step with {tried})")
    for r in doc["results"]:
        if "blas_threads" in r:
            tried = ", ".join(f"{k}: {1e3 * v['median'] / min(100, r['steps']):.3f}" for k, v in r["blas_threads_tried"].items())
            chosen.append(f"NumPy BLAS on {r['workload']}: {r['blas_threads']} (ms/step with {tried})")
    return chosen


def _bench_results(doc: dict) -> list[str]:
    """The main table (a row per workload and implementation) and the two lines that explain it."""
    rows = []
    for r in doc["results"]:
        w = doc["workloads"][r["workload"]]
        s = w["sizes"]
        ms = r["ms_per_step"]
        rows.append([
            f"{r['workload']} ({s['batch']}x{s['d_in']}x{s['hidden']}x{s['d_out']}, {w['steps']} steps)", r["impl"],
            "-" if r["compile_seconds"] is None else f"{r['compile_seconds']:.2f}",
            f"{ms['min']:.3f}", f"{ms['median']:.3f}", _spread(ms), f"{r['gflops']['max']:.0f}",
            _percent(r["percent_of_peak"]), f"{r['percent_of_shape_ceiling']:.0f}%",
            _ratio(r["speedup_vs_torch_eager"]),
        ])
    return [
        format_table(["workload", "implementation", "compile s", "ms/step min", "median", "spread",
                      "GFLOP/s best", "of peak", "of shape ceiling", "vs torch eager"], rows),
        "shape ceiling: best GFLOP/s of the step's two big matmuls alone in a compiled loop (" + ", ".join(
            f"{n} {w['matmul_ceiling_gflops']['max']:.0f}" for n, w in doc["workloads"].items()) + ")",
        "vs torch eager: median of the per-round ratios [min-max]; spread: (max - min) / median",
    ]


def _bench_sweep(sw: dict) -> str:
    """The sweep's table: the same runs vmapped in one program and one after another."""
    return format_table([f"{sw['runs']} runs x {sw['steps']} steps (seed workload)", "seconds min", "median",
                         "spread", "GFLOP/s best", "of peak", "compile s"], [
        [name, f"{r['seconds']['min']:.2f}", f"{r['seconds']['median']:.2f}", _spread(r["seconds"]),
         f"{r['gflops']['max']:.0f}", _percent(r["percent_of_peak"]),
         "-" if r["compile_seconds"] is None else f"{r['compile_seconds']:.2f}"]
        for name, r in sw["results"].items()
    ])


def write_bench_plot(path: Path, doc: dict) -> None:
    """Grouped bars: percent of the fp32 peak and ms/step, per workload and implementation."""
    plt = _pyplot()
    workloads = list(doc["workloads"])
    impls = list(dict.fromkeys(r["impl"] for r in doc["results"]))
    fig, (ax_pct, ax_ms) = plt.subplots(1, 2, figsize=(12, 4.2), constrained_layout=True)
    width = 0.8 / len(impls)
    for k, impl in enumerate(impls):
        xs, pct, ms = [], [], []
        for i, w in enumerate(workloads):
            r = next((r for r in doc["results"] if r["workload"] == w and r["impl"] == impl), None)
            if r:
                xs.append(i + (k - (len(impls) - 1) / 2) * width)
                pct.append(min(r["percent_of_peak"], 100.0))  # above 100: unreliable, flagged in the table
                ms.append(r["ms_per_step"]["median"])
        ax_pct.bar(xs, pct, width, label=impl)
        ax_ms.bar(xs, ms, width, label=impl)
    for ax in (ax_pct, ax_ms):
        ax.set_xticks(range(len(workloads)), workloads)
        ax.grid(True, axis="y", alpha=0.3)
    ax_pct.set_ylabel(f"% of fp32 matmul peak ({doc['peak']['gflops']:.0f} GFLOP/s)")
    ax_ms.set_ylabel("ms per step (log)")
    ax_ms.set_yscale("log")
    ax_pct.legend(fontsize="small")
    busy = "" if doc.get("reliable", True) else " (machine busy, not reliable)"
    fig.suptitle(f"fnnet bench: two-layer net, Adam, {doc['machine']['cpus']} CPUs; medians of {doc['repeats']} rounds{busy}")
    _save(fig, path)
