"""No first-party module may import itself through others, delayed imports included.

A cycle works only while some import in it stays inside a function; the first person who moves
it to the top of its file gets an ImportError far from the cause. The graph is read from the
source (ast), so every import counts wherever it sits.
"""

import ast
from pathlib import Path

import pytest

#: The repository root, holding every first-party package and module.
ROOT = Path(__file__).resolve().parent.parent

#: Top-level names that are ours; anything else imported is a dependency.
FIRST_PARTY = ("cli", "pipeline", "worker", "harness", "tests", "benchmarks")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def first_party_files() -> dict[str, Path]:
    files = {}
    for top in FIRST_PARTY:
        single = ROOT / f"{top}.py"
        candidates = [single] if single.is_file() else sorted((ROOT / top).rglob("*.py"))
        for path in candidates:
            files[module_name(path)] = path
    return files


def imported_names(path: Path, module: str, modules: set[str]) -> set[str]:
    """The first-party modules an ``import`` or ``from … import`` in the file loads.

    ``from package import module`` depends on that module, not on the package's ``__init__``
    (Python imports a submodule even while its package is half initialised); ``from package
    import name`` depends on the package.
    """
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                names.add(submodule if submodule in modules else base)
    return names & modules


def import_graph() -> dict[str, set[str]]:
    """Module → the first-party modules it imports."""
    files = first_party_files()
    return {
        module: imported_names(path, module, set(files)) - {module}
        for module, path in files.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_no_first_party_module_imports_itself_through_others():
    assert cycles(import_graph()) == []


def test_the_checker_finds_cycles_and_delayed_relative_imports(tmp_path):
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    source = tmp_path / "pkg" / "mod.py"
    source.parent.mkdir()
    source.write_text("def later():\n    from . import other\n    import worker.app\n")
    names = imported_names(source, "pkg.mod", {"pkg", "pkg.other", "worker", "worker.app"})
    assert names == {"pkg.other", "worker.app"}


@pytest.mark.parametrize("module", ["worker.app", "worker.client", "pipeline.process"])
def test_known_modules_are_in_the_graph(module):
    assert module in import_graph()
