"""The layout's counts (issue "one lesson, one source"): what a newcomer meets when changing one lesson.

- A lesson id written as a string outside ``fnnet/lessons/`` (docstrings excluded) is knowledge about that
  lesson kept somewhere other than its record: at most ``MAX_ID_LITERALS`` of them.
- No function body over ``MAX_BODY`` code lines (the signature, docstring, blank and comment lines not
  counted) and no class over ``MAX_CLASS`` lines, anywhere in ``src/fnnet``.

Each rule is checked on a small made-up source too, so the counter itself is tested.
"""

import ast
from pathlib import Path

import pytest

from fnnet.lessons import LESSONS

SRC = Path(__file__).resolve().parent.parent / "src" / "fnnet"
MAX_ID_LITERALS = 20
MAX_BODY = 60
MAX_CLASS = 200


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of every string that stands alone as a statement (module, class, function and attribute docstrings)."""
    return {id(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}


def id_literals(source: str, ids) -> list[tuple[int, str]]:
    """(line, text) of each string constant equal to a lesson id, docstrings excluded."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    return sorted((node.lineno, node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in ids
                  and id(node) not in skip)


def body_lines(function: ast.AST, lines: list[str]) -> int:
    """Code lines of a function's body: its docstring, blank lines and comment lines not counted."""
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    code = set()
    for statement in body:
        for number in range(statement.lineno, statement.end_lineno + 1):
            text = lines[number - 1].strip()
            if text and not text.startswith("#"):
                code.add(number)
    return len(code)


def too_long(source: str, name: str = "<source>") -> list[str]:
    """One line per function over MAX_BODY code lines and per class over MAX_CLASS lines."""
    lines, found = source.splitlines(), []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and body_lines(node, lines) > MAX_BODY:
            found.append(f"{name}:{node.lineno} function {node.name}: {body_lines(node, lines)} code lines")
        if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS:
            found.append(f"{name}:{node.lineno} class {node.name}: {node.end_lineno - node.lineno + 1} lines")
    return found


def _sources():
    return sorted(SRC.rglob("*.py"))


def test_lesson_ids_are_written_on_their_records_only():
    outside = {}
    for path in _sources():
        if (SRC / "lessons") in path.parents:
            continue
        hits = id_literals(path.read_text(encoding="utf-8"), set(LESSONS))
        if hits:
            outside[str(path.relative_to(SRC))] = hits
    count = sum(len(h) for h in outside.values())
    assert count <= MAX_ID_LITERALS, f"{count} lesson-id strings outside fnnet/lessons/: {outside}"


def test_no_function_over_60_lines_and_no_class_over_200():
    found = [line for path in _sources() for line in too_long(path.read_text(encoding="utf-8"), path.name)]
    assert not found, "\n".join(found)


def test_the_counters_count():
    source = '''"""nn is named in a docstring: not counted."""
X = "nn"  # counted
def f(lesson="optim"):  # counted
    """optim again, a docstring."""
    return lesson == "numpy"  # counted
'''
    assert [text for _, text in id_literals(source, set(LESSONS))] == ["nn", "optim", "numpy"]
    long_function = "def f():\n    '''doc'''\n" + "".join(f"    x{i} = {i}\n    # note\n\n" for i in range(MAX_BODY + 1))
    assert too_long(long_function) == [f"<source>:1 function f: {MAX_BODY + 1} code lines"]
    assert too_long(long_function.replace(f"    x{MAX_BODY} = {MAX_BODY}\n", "")) == []
    long_class = "class C:\n" + "    x = 1\n" * MAX_CLASS
    assert too_long(long_class) == [f"<source>:1 class C: {MAX_CLASS + 1} lines"]


@pytest.mark.parametrize("old, new", [("checkpoint", "fnnet.runtime.checkpoint"), ("notebook", "fnnet.parity.proof"),
                                      ("functional", "fnnet.lessons.functional")])
def test_the_old_module_names_are_the_moved_modules(old, new):
    import importlib

    assert importlib.import_module(f"fnnet.{old}") is importlib.import_module(new)


def test_the_old_train_module_offers_its_names_from_their_homes():
    import fnnet.train as old
    from fnnet.training import core, fit

    assert old.fit is fit.fit and old.TrainState is core.TrainState and old.step_key is core.step_key
