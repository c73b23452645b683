"""The layers of docs/design.md, checked on the source: dependencies point one way, there is no
import cycle between modules, and only lava_runtime.lava_graph imports Lava.

Every `import` in the project's packages counts, also those inside functions (a deferred import
is still a dependency). A unit may import itself and units of a lower rank only."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("hw_profiles", "deployed", "trainer", "export", "lava_runtime", "experiments",
            "delaysnn")
# unit (module prefix; the longest matching prefix wins) -> rank
RANKS = {
    "hw_profiles": 0,
    "delaysnn.options": 0,  # the shared command-line vocabulary (standard library only)
    "delaysnn.terminal": 0,  # progress bars (standard library and tqdm only)
    "deployed": 1,  # the Lava-free core: deployed network, file, fixed point, emulator, limits
    "trainer": 1,
    "export": 2,
    "lava_runtime.lava_graph": 3,  # the only unit that imports Lava
    "lava_runtime.budget": 3,
    "lava_runtime.pipeline": 4,
    "lava_runtime.run_cli": 5,
    "lava_runtime.budget.cli": 5,
    "lava_runtime.report": 5,
    "lava_runtime.demo": 5,
    "lava_runtime": 6,  # __main__: the command dispatcher
    "experiments": 7,
    "delaysnn": 7,
}
LAVA_UNIT = "lava_runtime.lava_graph"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules (and top-level external packages, prefixed 'ext:') imported by a file."""
    is_pkg = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[:len(name.split(".")) - node.level + (1 if is_pkg else 0)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod
                       for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in modules and "." in t:
                t = t.rsplit(".", 1)[0]
            out.add(t if t in modules else "ext:" + t.split(".")[0])
    return out


def unit_of(module: str) -> str:
    best = max((u for u in RANKS if module == u or module.startswith(u + ".")), key=len)
    return best


@pytest.fixture(scope="module")
def graph():
    modules = project_modules()
    return {m: imports_of(m, p, modules) for m, p in modules.items()}


def test_every_module_belongs_to_a_unit(graph):
    for m in graph:
        assert unit_of(m) in RANKS


def test_dependencies_point_down(graph):
    upward = []
    for m, deps in graph.items():
        u = unit_of(m)
        for d in deps:
            if d.startswith("ext:"):
                continue
            v = unit_of(d)
            if v != u and not RANKS[v] < RANKS[u]:
                upward.append(f"{m} ({u}, rank {RANKS[u]}) imports {d} ({v}, rank {RANKS[v]})")
    assert not upward, "imports that point up or sideways:\n" + "\n".join(sorted(upward))


def test_no_import_cycles(graph):
    project = {m: {d for d in deps if not d.startswith("ext:") and d != m}
               for m, deps in graph.items()}
    # a package's __init__ is not an import of its submodules, so cycles are between files
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for d in sorted(project[m]):
            if state.get(d) == "open":
                cycles.append(" -> ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = "done"

    for m in sorted(project):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_only_the_lava_graph_imports_lava(graph):
    users = sorted(m for m, deps in graph.items()
                   if "ext:lava" in deps and not (m == LAVA_UNIT or m.startswith(LAVA_UNIT + ".")))
    assert not users, f"modules outside {LAVA_UNIT} that import Lava: {users}"


def test_the_checker_sees_an_upward_import_and_a_cycle(tmp_path):
    """The walk itself: a core module importing export, and two modules importing each other."""
    core = tmp_path / "deployed" / "bad.py"
    core.parent.mkdir()
    core.write_text("from export.to_lava import export_checkpoint\nimport lava.magma\n")
    modules = {"deployed.bad": core, "export.to_lava": REPO / "export" / "to_lava.py"}
    deps = imports_of("deployed.bad", core, modules)
    assert deps == {"export.to_lava", "ext:lava"}
    assert RANKS[unit_of("export.to_lava")] > RANKS[unit_of("deployed.bad")]
