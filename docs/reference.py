"""The generated parts of the site: the API reference and the command's reference.

The API reference documents every public module of fnnet at its own path (``fnnet.training.fit``, not the old
alias ``fnnet.train``) and every name of ``fnnet.__all__`` once, as ``fnnet.<name>``: a module's page leaves
out what ``fnnet`` itself documents and links to it instead, so each object has one entry (Sphinx's ``-W``
stops on a duplicate). The pages hold autodoc directives; the docstrings (Google style, read by napoleon)
are the text. The command's reference is read from ``fnnet.cli.build_parser()``, so it lists what the
parser accepts and nothing else.
"""

from __future__ import annotations

import argparse
import ast
import functools
import importlib
import inspect
import os
import pkgutil
import re
from pathlib import Path

from sphinx.pycode import ModuleAnalyzer

GROUPS = {  # the packages in the order the reference shows them, each with one line on what it holds
    "fnnet.lessons": "the lesson records and the lessons' models (no PyTorch here)",
    "fnnet.training": "the training core: configuration, the compiled step, the host loop, hooks, fit, sweeps",
    "fnnet.runtime": "what a run needs from its machine: checkpoints, signals, devices, several processes",
    "fnnet.parity": "the proof against PyTorch: the tutorial in PyTorch, the comparison, the pages' proof",
    "fnnet.cli": "the fnnet command, and the benchmark and reports it prints",
}
BESIDE = {"en": ("Beside the packages", "The modules every package may use."),
          "zh": ("包之外的模块", "各个包都可以用的模块。")}
URLS = ("JAX: https://docs.jax.dev/en/latest/ · optax: https://optax.readthedocs.io/en/latest/ · "
        "flax nnx: https://flax.readthedocs.io/en/latest/ · orbax: https://orbax.readthedocs.io/en/latest/")


@functools.cache
def public_modules() -> tuple[str, ...]:
    """Every public module of fnnet at its canonical path (the old flat aliases are not modules of their own)."""
    import fnnet

    names = ["fnnet"]
    for info in pkgutil.walk_packages(fnnet.__path__, "fnnet."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return tuple(sorted(names, key=_order))


def _order(name: str) -> tuple:
    """fnnet first, then the packages in GROUPS' order, then the modules beside them."""
    top = ".".join(name.split(".")[:2])
    return (-1 if name == "fnnet" else list(GROUPS).index(top) if top in GROUPS else len(GROUPS), name)


@functools.cache
def top_level() -> dict[str, object]:
    """``fnnet.__all__``'s objects (its submodules excluded), documented once, under ``fnnet``: functions first,
    then classes, values and exceptions."""
    import fnnet

    found = {name: getattr(fnnet, name) for name in fnnet.__all__}
    found = {name: obj for name, obj in found.items() if not inspect.ismodule(obj)}
    return dict(sorted(found.items(), key=lambda item: _kind_order(item[1])))


def _kind_order(obj) -> int:
    if inspect.isclass(obj):
        return 3 if issubclass(obj, BaseException) else 1
    return 0 if callable(obj) else 2


def attribute_docs(module_name: str) -> dict[str, list[str]]:
    """The module-level names that carry a docstring (``NAME = ...`` then a string), with it."""
    try:
        docs = ModuleAnalyzer.for_module(module_name).find_attr_docs()
    except Exception:  # noqa: BLE001 - a module without readable source documents no attributes
        return {}
    return {name: lines for (scope, name), lines in docs.items() if not scope}


def members(module) -> list[tuple[str, str]]:
    """(name, autodoc directive) of what ``module`` defines and makes public, in source order."""
    names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
    data = attribute_docs(module.__name__)
    shared = [id(obj) for obj in top_level().values()]
    found = []
    for name in names:
        obj = getattr(module, name, None)
        if inspect.ismodule(obj) or id(obj) in shared:
            continue
        if getattr(obj, "__module__", None) == module.__name__ and (inspect.isclass(obj) or callable(obj)):
            kind = "autoclass" if inspect.isclass(obj) else "autofunction"
            if inspect.isclass(obj) and issubclass(obj, BaseException):
                kind = "autoexception"
            found.append((name, kind))
        elif name in data:
            found.append((name, "autodata"))
    order = source_order(module.__name__)
    return sorted(found, key=lambda item: order.get(item[0], len(order)))


def source_order(module_name: str) -> dict[str, int]:
    """name -> its place among the module's top-level definitions."""
    try:
        analyzer = ModuleAnalyzer.for_module(module_name)
        analyzer.analyze()
    except Exception:  # noqa: BLE001 - no readable source: keep the names' own order
        return {}
    return {name: place for name, place in analyzer.tagorder.items() if "." not in name}


def homed_here(module) -> list[str]:
    """The names of ``fnnet`` whose object this module defines."""
    data = attribute_docs(module.__name__)
    return [name for name, obj in top_level().items()
            if getattr(obj, "__module__", None) == module.__name__ and (inspect.isclass(obj) or callable(obj))
            or name in data and vars(module).get(name) is obj]


def directive(kind: str, target: str, options: tuple[str, ...] = ()) -> str:
    lines = [f".. {kind}:: {target}"]
    if kind == "autoclass":
        options = (":members:", ":show-inheritance:", *options)
    if kind == "autodata":
        options = (":no-value:", *options)
    lines += [f"   {option}" for option in options]
    return "\n".join(lines) + "\n"


def module_page(name: str) -> str:
    """The page of one module: its docstring, a table of its names, then each name's entry."""
    module = importlib.import_module(name)
    found = members(module)
    parts = [f"{name}\n{'=' * len(name)}\n", f".. automodule:: {name}\n"]
    listed = [member for member, kind in found if kind != "autodata"]  # a value's summary would be its type's
    if listed:
        table = "\n".join(f"   {member}" for member in listed)  # relative to the module automodule set
        parts.append(f".. rubric:: Contents\n\n.. autosummary::\n   :nosignatures:\n\n{table}\n")
    also = homed_here(module)
    if also:
        links = ", ".join(f":py:obj:`fnnet.{n}`" for n in also)
        parts.append(f"Defined here and documented under ``fnnet``: {links}.\n")
    children = [m for m in public_modules() if m.rpartition(".")[0] == name]
    if children:
        table = "\n".join(f"   {child.rpartition('.')[2]}" for child in children)
        parts.append(f".. rubric:: Modules\n\n.. autosummary::\n\n{table}\n")
    parts += [directive(kind, f"{name}.{member}") for member, kind in found]
    return "\n".join(parts)


def fnnet_page() -> str:
    """The page of ``fnnet`` itself: every name of ``fnnet.__all__``, documented here and nowhere else."""
    import fnnet

    parts = ["fnnet\n=====\n", ".. automodule:: fnnet\n"]
    names = top_level()
    parts.append(".. rubric:: Contents\n\n" + summary_table(names, prefix=""))
    submodules = [n for n in fnnet.__all__ if inspect.ismodule(getattr(fnnet, n))]
    if submodules:
        links = ", ".join(f":py:mod:`fnnet.{n} <{getattr(fnnet, n).__name__}>`" for n in submodules)
        parts.append(f"Also imported as an attribute: {links}.\n")
    for name, obj in names.items():
        if inspect.isclass(obj):
            kind = "autoexception" if issubclass(obj, BaseException) else "autoclass"
        elif callable(obj):
            kind = "autofunction"
        else:
            parts.append(_data_entry(f"fnnet.{name}", obj))
            continue
        parts.append(directive(kind, f"fnnet.{name}"))
    return "\n".join(parts)


def _data_entry(target: str, obj) -> str:
    """A ``py:data`` entry for a value of ``fnnet``, with the docstring it has where it is defined."""
    from sphinx.ext.napoleon import Config, GoogleDocstring

    module_path, _, name = target.rpartition(".")
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        doc = attribute_docs(module_name).get(name)
        if doc and vars(module).get(name) is obj:
            text = str(GoogleDocstring("\n".join(doc), Config(napoleon_use_ivar=True)))
            body = "\n".join(f"   {line}" if line else "" for line in text.splitlines())
            return f".. py:data:: {name}\n   :module: {module_path}\n   :type: {type(obj).__name__}\n\n{body}\n"
    return f".. py:data:: {name}\n   :module: {module_path}\n"


def canonical_name(target: str) -> str | None:
    """Where the object ``target`` names is documented: ``fnnet.fit`` for the old ``fnnet.train.fit``.

    A module's own name for a module; ``fnnet.NAME`` for what ``fnnet`` itself exports; else the defining
    module's path and the object's qualified name (for a value, the path of the module it was read from).
    """
    import fnnet

    try:
        return importlib.import_module(target).__name__  # a module, under its own (not its old) name
    except ImportError:
        pass
    module_name, _, attr = target.rpartition(".")
    try:
        module = importlib.import_module(module_name)
        obj = getattr(module, attr)
    except (ImportError, AttributeError, ValueError):
        return None
    for name in fnnet.__all__:  # the names of fnnet itself are documented there, once
        if getattr(fnnet, name, None) is obj:
            return f"fnnet.{name}"
    if inspect.ismodule(obj):
        return obj.__name__
    owner, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if owner and qualname:
        return f"{owner}.{qualname}"
    return f"{module.__name__}.{attr}"  # a value: documented where the module defines it


def documented() -> set[str]:
    """The full name of every entry the reference holds: modules, ``fnnet.NAME``, and each module's names."""
    names = {f"fnnet.{name}" for name in top_level()}
    for module_name in public_modules():
        names.add(module_name)
        if module_name != "fnnet":
            names |= {f"{module_name}.{member}" for member, _ in members(importlib.import_module(module_name))}
    return names


def index_page(lang: str) -> str:
    """The reference's front page: the names of ``fnnet``, then each package with its modules."""
    modules = public_modules()
    title = "API reference" if lang == "en" else "API 参考"
    intro = ("Generated from the docstrings of fnnet's code. The names most programs need are "
             "those of ``fnnet`` itself; the packages below hold the rest, each module on its page. "
             if lang == "en" else
             "由 fnnet 代码中的文档字符串生成（英文）。多数程序只需要 ``fnnet`` 本身的名字；其余的在下面各个包里，"
             "每个模块一页。")
    parts = [f"{title}\n{'=' * (len(title) * 2)}\n", intro + "\n", f"{URLS}\n",
             summary_table(top_level(), prefix="fnnet.")]
    sections = {group: (f"{what[0].upper()}{what[1:]}.", [m for m in modules if m == group or m.startswith(group + ".")])
                for group, what in GROUPS.items()}
    heading, what = BESIDE[lang]
    sections[heading] = (what, [m for m in modules if m != "fnnet" and _order(m)[0] == len(GROUPS)])
    for heading, (what, inside) in sections.items():
        parts.append(f"{heading}\n{'-' * (len(heading) * 2)}\n\n{what}\n\n.. autosummary::\n\n"
                     + "\n".join(f"   {m}" for m in inside) + "\n")
    parts.append(".. toctree::\n   :hidden:\n\n" + "\n".join(f"   {m}" for m in modules) + "\n")
    return "\n".join(parts)


def summary_table(names: dict[str, object], prefix: str) -> str:
    """An autosummary table of classes and functions (a value's summary would be its type's docstring)."""
    rows = [f"   {prefix}{name}" for name, obj in names.items() if inspect.isclass(obj) or callable(obj)]
    return ".. autosummary::\n   :nosignatures:\n\n" + "\n".join(rows) + "\n"


def write_api(tree: Path, lang: str) -> None:
    folder = tree / "api"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.rst").write_text(index_page(lang), encoding="utf-8")
    for name in public_modules():
        text = fnnet_page() if name == "fnnet" else module_page(name)
        (folder / f"{name}.rst").write_text(text, encoding="utf-8")


# ---------------------------------------------------------------- the layout


def first_line(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def layout_tree(package: Path) -> str:
    """MyST: ``src/fnnet`` as a nested list, each file with its docstring's first line and a link to its page."""
    return f"- `src/{package.name}/` — {first_line(package / '__init__.py')}\n" + _folder(package, package.name, 1)


def _folder(folder: Path, dotted: str, depth: int) -> str:
    files = sorted(p for p in folder.glob("*.py") if p.name != "__init__.py")
    packages = sorted((p for p in folder.iterdir() if (p / "__init__.py").is_file()),
                      key=lambda p: _order(f"{dotted}.{p.name}"))
    indent, lines = "  " * depth, []
    for path in files:
        lines.append(f"{indent}- {_link(path.name, f'{dotted}.{path.stem}')} — {first_line(path)}\n")
    for path in packages:
        name = f"{dotted}.{path.name}"
        lines.append(f"{indent}- {_link(path.name + '/', name)} — {first_line(path / '__init__.py')}\n")
        lines.append(_folder(path, name, depth + 1))
    return "".join(lines)


def imports_between(package: Path) -> str:
    """MyST: which of fnnet's packages and top-level modules each one imports, read from the source (ast)."""
    def unit(dotted: str) -> str:
        parts = dotted.split(".")
        return parts[1] if len(parts) > 1 else parts[0]

    edges: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        here = unit(".".join((package.name, *path.relative_to(package).with_suffix("").parts)))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = [node.module] if isinstance(node, ast.ImportFrom) and node.module else \
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            for target in targets:
                if target.startswith(package.name + ".") and unit(target) != here and not here.startswith("__"):
                    edges.setdefault(here, set()).add(unit(target))
    order = lambda name: (_order(f"{package.name}.{name}"), name)  # noqa: E731
    return "".join(f"- `{name}` imports {', '.join(f'`{t}`' for t in sorted(edges[name], key=order))}\n"
                   for name in sorted(edges, key=order))


def _link(text: str, module: str) -> str:
    private = any(part.startswith("_") for part in module.split("."))
    return f"`{text}`" if private else f"{{py:mod}}`{text} <{module}>`"


# ---------------------------------------------------------------- the command


def _escape(text: str) -> str:
    """A help text as MyST: markup characters escaped, flags as code (not a dash), fnnet's names as links."""
    for char in "\\`*<":
        text = text.replace(char, "\\" + char)
    text = re.sub(r"(?<![\w`])(--[a-z][a-z0-9-]*)", r"`\1`", text)
    return re.sub(r"(?<![\w`])(fnnet(?:\.[A-Za-z_]\w*)+)", r"{py:obj}`\1`", text)


def _signature(action: argparse.Action) -> str:
    if not action.option_strings:
        return action.metavar or action.dest
    flag = ", ".join(action.option_strings)
    if action.nargs == 0:
        return flag
    value = action.metavar or ("{" + ",".join(map(str, action.choices)) + "}" if action.choices else action.dest.upper())
    return f"{flag} {value}"


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    text = parser._get_formatter()._expand_help(action) if action.help else ""
    extra = []
    if action.required:
        extra.append("required")
    if (action.option_strings and action.nargs != 0 and action.default not in (None, argparse.SUPPRESS)
            and "default" not in text):
        extra.append(f"default: {action.default}")
    if extra:
        text = f"{text} ({'; '.join(extra)})" if text else "; ".join(extra).capitalize()
    return _escape(text)


def subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[str, argparse.ArgumentParser]]:
    """name -> (one-line help, parser) of each subcommand, in the parser's order."""
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    found = {}
    for action in actions:
        helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
        for name, sub in action.choices.items():
            found[name] = (helps.get(name, ""), sub)
    return found


def command_reference(parser: argparse.ArgumentParser) -> str:
    """MyST text: each subcommand's usage, then every argument with its help, group by group."""
    os.environ["COLUMNS"] = "100"  # argparse wraps usage lines at the terminal's width
    parts = []
    for name, (summary, sub) in subcommands(parser).items():
        parts.append(f"### `{parser.prog} {name}`\n\n{_escape(summary[:1].upper() + summary[1:])}.\n")
        if sub.description:
            parts.append(_escape(sub.description) + "\n")
        parts.append(f"```text\n{sub.format_usage().strip()}\n```\n")
        parts.append(f"```{{program}} {parser.prog} {name}\n```\n")
        for group in sub._action_groups:
            shown = [a for a in group._group_actions if not isinstance(a, argparse._HelpAction)]
            if not shown:
                continue
            parts.append(f"**{group.title[:1].upper()}{group.title[1:]}**\n")
            if group.description:
                parts.append(_escape(group.description) + "\n")
            for action in shown:
                parts.append(f"```{{option}} {_signature(action)}\n{_help(sub, action)}\n```\n")
    return "\n".join(parts)
