"""The package's shape, checked: imports run one way (no cycle among skyforecast's modules), the networks
import without the Hub or the weights loader, and ``import skyforecast`` stays cheap (no torch)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import skyforecast

PACKAGE = Path(skyforecast.__file__).parent


# Deferred imports (inside functions) that close a loop back to ``weights`` and are allowed for now: the
# old Hub-style spellings on ``models`` kept for callers in cli.py, train.py, tests and bench. Delete an
# entry together with its function once those callers use ``skyforecast.model.weights`` directly.
COMPAT_SPELLINGS = {
    ("model.networks", "__getattr__"),
    ("model.networks", "MDGAN.from_pretrained"),
    ("model.networks", "MDGAN.save_pretrained"),
    ("model.networks", "MDGAN.save_half"),
    ("model.networks", "MDGAN.push_to_hub"),
}


def _imports(body: list[ast.stmt], deferred: bool, scope: str = "") -> list[tuple[str, ast.stmt]]:
    """(enclosing function, import statement) for the imports that run when the module is imported: top
    level and inside top-level ``if``/``try`` blocks, never under ``if TYPE_CHECKING:``. With ``deferred``
    also those inside functions and classes (run when called), named by their function."""
    found: list[tuple[str, ast.stmt]] = []
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append((scope, node))
        elif isinstance(node, ast.If):
            test = node.test
            type_checking = getattr(test, "id", getattr(test, "attr", None)) == "TYPE_CHECKING"
            found += _imports(node.orelse if type_checking else node.body + node.orelse, deferred, scope)
        elif isinstance(node, (ast.Try, ast.With)):
            blocks = [node.body] if isinstance(node, ast.With) else [node.body, node.orelse, node.finalbody]
            for block in blocks + [h.body for h in getattr(node, "handlers", [])]:
                found += _imports(block, deferred, scope)
        elif deferred and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found += _imports(node.body, deferred, f"{scope}.{node.name}".lstrip("."))
    return found


def _module_name(path: Path, package: Path) -> str:
    """``skyforecast.x`` for x.py, ``skyforecast.sub`` for sub/__init__.py, ``skyforecast.sub.y`` for
    sub/y.py."""
    parts = path.relative_to(package).with_suffix("").parts
    return ".".join(("skyforecast",) + (parts[:-1] if parts[-1] == "__init__" else parts))


def import_graph(package: Path = PACKAGE, deferred: bool = False) -> dict[str, set[str]]:
    """skyforecast module (sub-packages' modules included) -> the skyforecast modules it imports at import
    time (``deferred``: or later, from a function, except the ``COMPAT_SPELLINGS``)."""
    paths = sorted(package.rglob("*.py"))
    modules = {_module_name(p, package) for p in paths}
    graph: dict[str, set[str]] = {}
    for path in paths:
        name = _module_name(path, package)
        here = name.split(".") if path.stem == "__init__" else name.split(".")[:-1]  # for relative imports
        deps: set[str] = set()
        for scope, node in _imports(ast.parse(path.read_text(encoding="utf-8")).body, deferred):
            if (name.removeprefix("skyforecast."), scope) in COMPAT_SPELLINGS:
                continue
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.split(".")[0] == "skyforecast"}
                continue
            if node.level:  # relative: ``from .x import y``, ``from . import x``, ``from ..x import y``
                target = ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else []))
            elif (node.module or "").split(".")[0] == "skyforecast":
                target = node.module
            else:
                continue
            submodules = {f"{target}.{a.name}" for a in node.names} & modules
            # ``from . import x`` needs module x, not its package (already being imported around it)
            deps |= submodules if len(submodules) == len(node.names) else submodules | {target}
        graph[name] = deps - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return path[path.index(dep) :] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycle_in_the_package():
    graph = import_graph()
    assert "skyforecast.model.architecture" in graph["skyforecast.model.fast"]  # the parser sees real imports
    assert "skyforecast.model.networks" in graph["skyforecast.model.convert"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_import_cycle_through_deferred_imports_either():
    """An import moved into a function still runs one way: ``weights.load_folder`` imports ``models``, so
    ``models`` must not import ``weights`` (it did, at its top, before the networks were split out)."""
    graph = import_graph(deferred=True)
    # load_folder's deferred import is seen
    assert "skyforecast.model.networks" in graph["skyforecast.model.weights"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle (counting imports inside functions): " + " -> ".join(cycle)


def test_the_graph_resolves_relative_imports_in_sub_packages(tmp_path: Path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "top.py").write_text("from . import __version__\nfrom .sub import a\n")
    (tmp_path / "sub" / "__init__.py").write_text("from .a import f\n")
    (tmp_path / "sub" / "a.py").write_text("from ..top import g\nfrom . import b\n")
    (tmp_path / "sub" / "b.py").write_text("import skyforecast.sub.a\n")
    assert import_graph(tmp_path) == {
        "skyforecast.top": {"skyforecast", "skyforecast.sub.a"},
        "skyforecast.sub": {"skyforecast.sub.a"},
        "skyforecast.sub.a": {"skyforecast.top", "skyforecast.sub.b"},  # not its own package: no false loop
        "skyforecast.sub.b": {"skyforecast.sub.a"},
    }


def test_the_graph_sees_sub_packages_and_the_generator_stands_alone():
    """The sky generator's modules are in the graph, with their relative imports resolved inside their
    sub-package, and they import nothing else from skyforecast (the generator needs none of it)."""
    graph = import_graph(deferred=True)
    assert "skyforecast.synth.noise" in graph["skyforecast.synth.clouds"]
    assert "skyforecast.synth.write_dataset" not in graph["skyforecast.synth"]  # a name, not a module
    assert "skyforecast.synth.dataset" in graph["skyforecast.synth"]
    assert "skyforecast.synth" in graph["skyforecast.cli.tools"]
    outside = {
        (mod, dep)
        for mod, deps in graph.items()
        if mod.startswith("skyforecast.synth")
        for dep in deps
        if not dep.startswith("skyforecast.synth")
    }
    assert not outside, outside


# The layers, top to bottom: a module imports only from its own layer and the layers below it, so the folder
# listing reads as the architecture (a photo's path: model -> render -> io; training and evaluation beside).
# The package root (``__version__``) belongs to no layer.
LAYERS = [
    ("skyforecast.cli", "skyforecast.__main__"),
    (
        "skyforecast.api",
        "skyforecast.batch",
        "skyforecast.batchplan",
        "skyforecast.app",
        "skyforecast.report",
        "skyforecast.sharding",
    ),
    ("skyforecast.training",),
    ("skyforecast.evaluation",),
    ("skyforecast.render", "skyforecast.synth"),
    ("skyforecast.model",),
    ("skyforecast.io",),
]
# Modules over the length limit, each to be split by what it holds: none. A new over-long module fails.
KNOWN_LONG: set[str] = set()
MAX_LINES = 600


def layer_of(module: str) -> int | None:
    for i, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    return None


def test_every_module_has_a_layer_and_imports_only_downwards():
    graph = import_graph(deferred=True)
    assert "skyforecast.render.steady" in graph and "skyforecast.io.media" in graph  # sub-packages are read
    unplaced = sorted(m for m in graph if m != "skyforecast" and layer_of(m) is None)
    assert not unplaced, f"modules outside every layer (add them to LAYERS): {unplaced}"
    upward = sorted(
        f"{m} -> {d}"
        for m, deps in graph.items()
        for d in deps
        if layer_of(m) is not None and layer_of(d) is not None and layer_of(d) < layer_of(m)
    )
    assert not upward, "imports that run upwards: " + ", ".join(upward)


def test_the_layer_rule_catches_an_upward_import(tmp_path):
    (tmp_path / "io").mkdir()
    (tmp_path / "io" / "__init__.py").write_text("")
    (tmp_path / "io" / "media.py").write_text("from ..render import steady\n")
    graph = import_graph(tmp_path, deferred=True)
    assert (
        "skyforecast.render.steady" in graph["skyforecast.io.media"]
        or "skyforecast.render" in graph["skyforecast.io.media"]
    )
    assert layer_of("skyforecast.render.steady") < layer_of("skyforecast.io.media")


def test_modules_stay_under_the_length_limit():
    lengths = {_module_name(p, PACKAGE): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    long = {m for m, n in lengths.items() if n > MAX_LINES}
    assert long - KNOWN_LONG == set(), {m: lengths[m] for m in long - KNOWN_LONG}
    assert KNOWN_LONG - long == set(), "no longer over the limit: delete from KNOWN_LONG"


def test_the_old_module_paths_still_import_the_same_modules():
    """Code and documentation written before the sub-packages import the modules by their old names
    (``skyforecast.media``, ``skyforecast.train``); they get the very modules of the new layout."""
    run = _modules_after(
        "import skyforecast, importlib\n"
        "from skyforecast.media import write_mp4\n"
        "from skyforecast.train import train, finetune, export_checkpoint\n"
        "from skyforecast.evaluate import evaluate\n"
        "import skyforecast.pipeline as old\n"
        "from skyforecast.model import pipeline as new\n"
        "assert old is new and old.__spec__.name == 'skyforecast.model.pipeline'\n"
        "constants = sys.modules['skyforecast.io.constants']\n"
        "assert skyforecast.constants.ArgumentError is constants.ArgumentError\n"
        "assert write_mp4 is sys.modules['skyforecast.io.media'].write_mp4\n"
        "for old_name, new_name in skyforecast._MOVED.items():\n"
        "    assert importlib.import_module('skyforecast.' + old_name) is "
        "importlib.import_module('skyforecast.' + new_name)\n"
    )
    assert "skyforecast.training.trainer" in run["modules"]


def _modules_after(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; return which modules it loaded and how long it took."""
    probe = (
        "import json, sys, time\n"
        "t = time.perf_counter()\n"
        f"{code}\n"
        "print(json.dumps({'seconds': time.perf_counter() - t, 'modules': sorted(sys.modules)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_networks_import_without_the_hub_or_the_weights_loader():
    loaded = _modules_after("import skyforecast.model.networks")["modules"]
    assert "skyforecast.model.networks" in loaded and "torch" in loaded
    assert "huggingface_hub" not in loaded
    assert "skyforecast.model.weights" not in loaded


def test_the_numpy_engine_and_the_one_call_api_import_without_torch():
    """A one-photo prediction never needs torch: the engine chooser, the numpy engine, the layer table they
    read and ``animate``'s module import none of it."""
    loaded = _modules_after(
        "import skyforecast.api, skyforecast.model.engines, skyforecast.model.numpy_engine, "
        "skyforecast.model.architecture"
    )["modules"]
    assert "skyforecast.model.numpy_engine" in loaded and "numpy" in loaded
    assert "torch" not in loaded


def test_importing_the_package_is_cheap():
    run = _modules_after("import skyforecast")
    assert "skyforecast" in run["modules"]
    assert "torch" not in run["modules"] and "numpy" not in run["modules"]
    assert run["seconds"] < 0.1, run["seconds"]


def test_the_package_face_loads_its_names_on_first_use():
    """``skyforecast.SkyPipeline`` is the pipeline class, found on first use; until then nothing heavy is
    imported, and an unknown name is a plain AttributeError."""
    run = _modules_after(
        "import skyforecast\n"
        "before = 'torch' in sys.modules\n"
        "assert 'SkyPipeline' in dir(skyforecast) and 'SkyPipeline' in skyforecast.__all__\n"
        "from skyforecast.model.pipeline import SkyPipeline\n"
        "assert skyforecast.SkyPipeline is SkyPipeline\n"
        "from skyforecast import SkyPipeline as again\n"
        "assert again is SkyPipeline\n"
        "try:\n"
        "    skyforecast.NoSuchThing\n"
        "except AttributeError as e:\n"
        "    assert 'NoSuchThing' in str(e)\n"
        "else:\n"
        "    raise AssertionError('no AttributeError')\n"
        "assert not before"
    )
    assert "skyforecast.model.pipeline" in run["modules"]


def test_the_earlier_render_motion_path_names_the_same_objects():
    from skyforecast.render import flow, motion, sizing, skymask, transfer

    assert motion.transfer is transfer.transfer and motion.auto_mask is skymask.auto_mask
    assert motion.frame_size is sizing.frame_size and motion.estimate_flows is flow.estimate_flows
