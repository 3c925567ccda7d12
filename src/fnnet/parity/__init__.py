"""Proof against PyTorch: the tutorial in PyTorch, the one comparison engine, and the pages' proof.

``torch_ref`` holds the tutorial's own loops, ``compare`` trains a lesson in PyTorch and in fnnet from one
start and compares them, ``proof`` runs a page's two program cells from one start. Needs PyTorch
(``pip install -e ".[compare]"``); ``import fnnet`` does not.
"""
