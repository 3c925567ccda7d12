"""Where a run executes: devices and several processes, checkpoints, Ctrl-C and SIGTERM.

Training reaches all of it through one object, ``session.Session``, made once per ``fnnet.fit``:

- ``session``: signals, processes agreeing, the checkpoint folder and a resume, placement, for one run;
- ``placement``: devices and the data-parallel mesh; ``host_value`` reads an array back on this process;
- ``collective``: several processes agreeing (``same_outcome``, ``share_from_first``, ``check_same_run`` ...);
- ``distributed``: joining several processes (``jax.distributed``);
- ``signals``: Ctrl-C and SIGTERM as a request to stop at the next chunk;
- ``checkpoint``: ``Checkpoints`` (save, restore, close), over ``checkpoint_folder`` (the folder's layout and
  checks), ``folder_lock`` (one writer), ``manifest`` (every file's SHA-256), ``orbax_io`` (what a checkpoint
  holds; orbax's reads and writes), ``restore`` (which checkpoint a resume takes), ``storage`` (a failed
  write's reason) and ``orbax_quirks`` (orbax's noise kept off stderr, each filter naming what it works around).
"""
