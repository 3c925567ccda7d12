"""Training: a run's configuration, the pure training functions, the host loop and its hooks, ``fit``.

``config.resolve`` checks what ``fit`` was given and freezes it into a ``RunConfig``; ``core.make_train``
turns that into pure, compiled functions; ``loop.run_loop`` drives them chunk by chunk with the hooks of
``hooks``; ``fit.fit`` reads resolve -> init -> place -> loop. ``optimizers`` names the update rules and
``sweep`` trains many (lr, seed) runs at once under ``jit(vmap)``.
"""
