"""The package's import rules (docs/architecture.md), checked on the source."""
import ast
import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "pyslide"
DATA = {"data", "synthetic", "checks", "datafiles", "metrics"}
MODEL = {"network", "training", "inference", "state", "persist", "distributed", "shard_actor",
         "settings", "loading", "seeds", "_shard_group", "_shard_steps", "weights"}


def our_imports(path):
    """Modules of ours that a Python module imports (anywhere in it)."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                names.add(node.module.split(".")[0])
            elif node.level == 1:
                names.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("pyslide"):
                rest = node.module.split(".")[1:]
                names.update(rest[:1] or [alias.name for alias in node.names])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names
                         if a.name.startswith("pyslide."))
    return names


PY_MODULES = sorted(p for p in PKG.glob("*.py"))


@pytest.mark.parametrize("path", PY_MODULES, ids=[p.name for p in PY_MODULES])
def test_import_rules(path):
    imports = our_imports(path)
    if path.stem in DATA:
        assert not imports & (MODEL | {"cli"}), f"{path.name} imports the model: {imports}"
    if path.stem in MODEL:
        assert "cli" not in imports, f"{path.name} imports the CLI"
    if path.stem not in ("cli", "__main__"):
        # demo.py is the demo's and the built-in benchmark's application code:
        # only the CLI runs it, and it alone reaches the optional PyTorch baseline
        assert "cli" not in imports and "demo" not in imports, path.name
        assert "torch_baseline" not in imports or path.stem == "demo", path.name
    if path.stem not in ("distributed", "loading"):
        # Ray is optional, and the models do not know each other: only the
        # loader above both (which picks one at call time) reaches the
        # sharded network's module
        assert "distributed" not in imports, f"{path.name} imports distributed"
    if path.stem not in ("loading", "__init__"):
        assert "loading" not in imports, f"{path.name} imports the loader (it sits above the models)"


def test_the_import_graph_has_no_cycle():
    """No module of ours reaches itself through the modules it imports
    (anywhere in it, at call time too): each layer only imports downward."""
    graph = {p.stem: our_imports(p) & {q.stem for q in PY_MODULES} for p in PY_MODULES}
    done, on_path = set(), []

    def visit(name):
        if name in on_path:
            cycle = on_path[on_path.index(name):] + [name]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        on_path.append(name)
        for other in sorted(graph.get(name, ())):
            visit(other)
        on_path.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


def test_only_persist_reads_and_checksums_saved_models():
    """One reader of the saved format: no other module computes CRC-32s or
    opens ``.npz`` files with ``numpy.load``."""
    for path in PY_MODULES:
        if path.stem == "persist":
            continue
        text = path.read_text()
        assert "zlib" not in text, f"{path.name} computes checksums (use persist.crc32)"
        assert "np.load(" not in text, f"{path.name} reads .npz files (use persist's readers)"


def test_ray_is_imported_only_inside_distributed_functions():
    """``import pyslide`` and ``import pyslide.distributed`` work without Ray."""
    for path in PY_MODULES:
        tree = ast.parse(path.read_text())
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        names = {a.name.split(".")[0] for n in top for a in n.names} | {
            (n.module or "").split(".")[0] for n in top if isinstance(n, ast.ImportFrom)}
        assert "ray" not in names, f"{path.name} imports ray at module level"


KERNELS = sorted(PKG.glob("_*.pyx"))


@pytest.mark.parametrize("path", KERNELS, ids=[p.name for p in KERNELS])
def test_kernels_import_no_python_module_of_ours(path):
    text = path.read_text()
    python_imports = re.findall(r"^\s*(?:from\s+(\S+)\s+import|import\s+(\S+))", text, re.M)
    for frm, imp in python_imports:
        name = frm or imp
        assert not (name.startswith(".") or name.startswith("pyslide")), \
            f"{path.name} imports {name} (kernels may only cimport .pxd declarations)"


SOURCES = sorted(PKG.glob("*.py")) + KERNELS + sorted(PKG.glob("*.pxd"))


@pytest.mark.parametrize("path", SOURCES, ids=[p.name for p in SOURCES])
def test_every_module_opens_with_its_job_and_its_imports(path):
    first = path.read_text().lstrip().splitlines()[0]
    assert re.search(r"import|cimport", first), \
        f"{path.name}: the first line must say the module's job and what it may import: {first!r}"


def test_scikit_learn_is_imported_only_by_pyslide_sklearn():
    """scikit-learn is an optional extra: only ``pyslide.sklearn`` imports it,
    and no module of ours imports ``pyslide.sklearn``."""
    for path in PY_MODULES:
        tree = ast.parse(path.read_text())
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                 for a in n.names}
        names |= {(n.module or "").split(".")[0] for n in ast.walk(tree)
                  if isinstance(n, ast.ImportFrom) and n.level == 0}
        if path.stem != "sklearn":
            assert "sklearn" not in names, f"{path.name} imports scikit-learn"
            assert "sklearn" not in our_imports(path), f"{path.name} imports pyslide.sklearn"


def test_data_modules_hold_one_concern_each():
    """Synthetic data, input checks and files are three modules; the checks
    import no other data module, and ``pyslide.data`` only re-exports."""
    assert our_imports(PKG / "checks.py") <= {"_validate"}
    assert our_imports(PKG / "synthetic.py") <= {"_openmp"}
    assert our_imports(PKG / "data.py") == {"synthetic", "checks", "datafiles"}
    assert "check_features" in our_imports(PKG / "hashing.py") | {
        alias.name for node in ast.walk(ast.parse((PKG / "hashing.py").read_text()))
        if isinstance(node, ast.ImportFrom) and node.module == "checks" for alias in node.names}


def test_no_kernel_calls_back_into_python_modules_of_ours():
    """A kernel that keeps a registered Python module of ours and calls it
    is an upward import in disguise: checks run on the Python side first."""
    for path in KERNELS:
        text = path.read_text()
        assert "_register" not in text and "sys.modules" not in text, path.name
    for path in PY_MODULES:
        assert "_register_validation" not in path.read_text(), path.name


def test_hash_families_and_bucket_tables_are_two_kernel_modules():
    families, tables = (PKG / "_hash.pyx").read_text(), (PKG / "_tables.pyx").read_text()
    assert "cdef class CompiledTables" in tables and "cdef class CompiledTables" not in families
    assert "cdef class CompiledFamily" in families and "def _query(" in tables
    imports = re.findall(r"^(?:from|cimport|import)\s.*$", families, re.M)
    assert imports and not any("_tables" in line for line in imports), imports


def test_one_epoch_loop_for_one_node_and_many():
    """``fit``'s loop exists once (``training.Trainer``): the sharded network
    trains through it with a step backend, and borrows nothing of Network's."""
    from pyslide.distributed import ShardedNetwork
    from pyslide.network import Network
    from pyslide.training import Trainer
    for name in ("_train_epoch", "_prepare_training", "_fit_data", "_step_schedule",
                 "_snapshot", "_restore", "_split_validation"):
        assert getattr(Network, name) is getattr(Trainer, name), name
        assert getattr(ShardedNetwork, name) is getattr(Trainer, name), name
    sharded = (PKG / "distributed.py").read_text() + (PKG / "_shard_steps.py").read_text()
    assert not re.search(r"\bNetwork\._\w+\(self", sharded), \
        "the sharded code borrows Network's private methods"
    from pyslide._shard_steps import ShardSteps
    from pyslide.training import LocalSteps
    for method in ("check_ready", "prepare", "start", "compute", "apply", "settle", "abort",
                   "finish", "snapshot", "restore"):
        assert callable(getattr(LocalSteps, method)) and callable(getattr(ShardSteps, method))


def test_seed_formulas_are_written_once():
    """Every random stream's seed is a function of ``seeds.py``: the single
    node and the shards call the same ones (one shard = the single node)."""
    formula = re.compile(r"7919|7907|104729|default_rng\(\[")
    for path in PY_MODULES:
        if path.stem != "seeds":
            found = formula.findall(path.read_text())
            assert not found, f"{path.name} writes a seed formula of its own: {found}"


@pytest.mark.parametrize("name", sorted(MODEL))
def test_model_modules_hold_no_unit_over_300_lines(name):
    """A class or function of the model's modules stays readable in one
    sitting (issue 19): the sharded network is its model, its step backend
    and its shard group, not one class of 900 lines."""
    tree = ast.parse((PKG / f"{name}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            lines = node.end_lineno - node.lineno + 1
            assert lines <= 300, f"{name}.py: {node.name} has {lines} lines"


def _class_lines(path, name):
    """Lines of ``cdef class name`` / ``class name`` in path, to the next top-level line."""
    lines = path.read_text().split("\n")
    start = next(i for i, line in enumerate(lines)
                 if re.match(rf"(cdef )?class {name}\b", line))
    end = next((i for i in range(start + 1, len(lines))
                if lines[i] and not lines[i][0].isspace() and not lines[i].startswith("#")),
               len(lines))
    return end - start


@pytest.mark.parametrize("file, name, limit", [
    ("_kernels.pyx", "_LayerTable", 300), ("_kernels.pyx", "Engine", 300),
    ("_shard.pyx", "ShardEngine", 330), ("hashing.py", "LSHTables", 300)])
def test_engines_and_tables_stay_about_300_lines(file, name, limit):
    assert _class_lines(PKG / file, name) <= limit
