"""Where a run executes: devices and several processes, checkpoints, Ctrl-C and SIGTERM.

``placement`` puts arrays on devices and agrees across processes, ``distributed`` joins several processes,
``checkpoint`` saves and restores runs, ``signals`` turns Ctrl-C and SIGTERM into a stop request. Training
reaches all of it through one call (see ``fnnet.training.fit``).
"""
