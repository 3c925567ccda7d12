"""Proof against PyTorch: the tutorial in PyTorch, the one comparison engine, and the pages' proof.

- ``torch_ref``: the tutorial's own loops, one per lesson (each record's ``torch_run`` and ``torch_module``).
- ``engine``: the one comparison (``Comparison``, ``Check``), its tolerances, the float64 rule for float32
  curves that drift, the chaotic horizon and tail, and PyTorch's names for fnnet's parameters.
- ``timing``: timing two codings (threads chosen, interleaved rounds), apart from judging them.
- ``compare``: a lesson trained in PyTorch and in fnnet from one start (``fnnet compare``).
- ``proof``: a page's two program cells run from one start (``fnnet.notebook.prove``).
- ``codings``: the four codings of a lesson (both cells, the library, ``torch_ref``) from one start.

Needs PyTorch (``pip install -e ".[compare]"``); ``import fnnet`` does not.
"""
