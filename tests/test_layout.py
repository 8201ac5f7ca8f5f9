"""The package's shape: no import circle between its modules (imports inside functions
included, TYPE_CHECKING ones aside), no module over 450 lines, and every option's name
declared in the option table alone."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "gpt_pipe"


def _imports(path: Path) -> set[str]:
    """The gpt_pipe modules ``path`` imports, at any depth, outside ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            skip.update(id(child) for child in ast.walk(node))
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gpt_pipe"):
            if node.module == "gpt_pipe":
                found.update(alias.name for alias in node.names if (PACKAGE / f"{alias.name}.py").exists())
            else:
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[1] for alias in node.names if alias.name.startswith("gpt_pipe."))
    return found - {path.stem}


def graph() -> dict[str, set[str]]:
    return {path.stem: _imports(path) for path in PACKAGE.glob("*.py") if path.stem != "__init__"}


def test_no_import_circle_between_modules():
    edges = graph()
    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges.get(module, ())):
            if state.get(target) == 1:
                raise AssertionError("import circle: " + " -> ".join([*trail[trail.index(target):], target]))
            if target not in state:
                visit(target, [*trail, target])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])


def test_no_module_over_450_lines():
    sizes = {path.name: len(path.read_text().splitlines()) for path in PACKAGE.glob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 450} == {}


def test_an_option_is_declared_in_the_option_table_only():
    """No other module spells a declaration: a tuple ``("-m", "--model"`` or a table key ``"--model":``."""
    from gpt_pipe.options import OPTIONS

    for path in PACKAGE.glob("*.py"):
        if path.stem == "options":
            continue
        text = path.read_text()
        for option in OPTIONS:
            for decl in option.decls:
                pattern = r"\(\s*(\"-[^\"]*\",\s*)*" + re.escape(f'"{decl}"') + "|" + re.escape(f'"{decl}"') + r"\s*:"
                assert not re.search(pattern, text), f"{path.name} declares {decl}"
