"""The package's shape: small files, and imports that only go down the book's concepts."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lib" / "actfn"

# Each module may import, at module level, from its own layer and the layers before it.
LAYERS = [
    ("shared", ["actfn.checks", "actfn.results", "actfn.progress", "actfn.report", "actfn.plotting",
                "actfn.tracking", "actfn.process", "actfn.stats", "actfn.verdicts", "actfn.records",
                "actfn.checkpoints", "actfn.data", "actfn.kernels"]),
    ("the learned activation", ["actfn.pwl"]),
    ("the activation registry", ["actfn.activations"]),
    ("theory", ["actfn.theory"]),
    ("unit experiments", ["actfn.unit"]),
    ("deep networks", ["actfn.deep"]),
    ("InfoMax", ["actfn.infomax"]),
    ("the chapters' parameters, the package's front door", ["actfn.params", "actfn.provenance", "actfn"]),
    ("sweeps: the chapters' runs on other engines", ["actfn.sweep"]),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(name: str, path: Path, known: dict) -> set[str]:
    """The actfn modules ``name`` imports at module level (imports inside functions are left out:
    they run when called, and do not make a cycle at import time)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                out.add(candidate if candidate in known else target)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m in known and m != name}


def layer_of(name: str) -> int:
    best = None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if name == prefix or name.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (i, len(prefix))
    assert best is not None, f"{name} belongs to no layer of tests/test_layout.py"
    return best[0]


def test_no_source_file_is_over_500_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*")
            if p.suffix in (".py", ".cpp", ".h", ".cu") and (n := len(p.read_text().splitlines())) > 500}
    assert not long, f"files over 500 lines: {long}"


def test_imports_have_no_cycles_and_go_down_the_layers():
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    upward = [f"{a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]})"
              for a, targets in graph.items() for b in targets if layer_of(b) > layer_of(a)]
    assert not upward, upward
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph[node]):
            assert state.get(nxt) != 1, "import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt])
            if not state.get(nxt):
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if not state.get(node):
            visit(node, [node])


def test_the_layout_check_sees_a_cycle_and_an_upward_import(tmp_path):
    # the checks above on a package that breaks both rules (so they can fail)
    pkg = tmp_path / "actfn"
    (pkg / "infomax").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "checks.py").write_text("from .infomax import bank\n")
    (pkg / "infomax" / "__init__.py").write_text("")
    (pkg / "infomax" / "bank.py").write_text("from ..checks import require\n")
    global PACKAGE
    saved, PACKAGE = PACKAGE, pkg
    try:
        known = modules()
        graph = {name: imports(name, path, known) for name, path in known.items()}
        assert graph["actfn.checks"] == {"actfn.infomax.bank"} and graph["actfn.infomax.bank"] == {"actfn.checks"}
        assert layer_of("actfn.infomax.bank") > layer_of("actfn.checks")
    finally:
        PACKAGE = saved
