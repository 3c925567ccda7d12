"""``run_main(argv)``: the ``fnnet`` command run in this process (``fnnet.cli.main``), ending as a process would.

The command turns on JAX's compiled-program cache (``$FNNET_CACHE_DIR``) for its process. Run in a test
worker, that would stay on for every later test, which would then write each of its compiles to disk and
run ``fnnet.fit`` unlike a library user's process; so JAX's cache settings are put back, and the cache
reset, when the command returns.
"""

import jax
from jax.experimental.compilation_cache import compilation_cache

SETTINGS = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
            "jax_persistent_cache_min_entry_size_bytes", "jax_compilation_cache_max_size")


def run_main(argv) -> int:
    """``fnnet.cli.main(argv)``'s exit code (argparse's ``SystemExit`` included), the cache put back after it."""
    from fnnet.cli import main

    before = {name: getattr(jax.config, name) for name in SETTINGS}
    try:
        return main([str(a) for a in argv])
    except SystemExit as stop:  # argparse's --help and usage errors
        return stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 2
    finally:
        if any(getattr(jax.config, name) != value for name, value in before.items()):
            for name, value in before.items():
                jax.config.update(name, value)
            compilation_cache.reset_cache()
