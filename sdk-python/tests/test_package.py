"""The installed package: typed, stubs matching the native module, optional imports optional."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import flowscope
from conftest import child_env, run_python
from flowscope import _native

PACKAGE = Path(flowscope.__file__).parent


def test_package_is_typed() -> None:
    assert (PACKAGE / "py.typed").exists()
    assert (PACKAGE / "_native.pyi").exists()


def test_native_stub_matches_the_module() -> None:
    tree = ast.parse((PACKAGE / "_native.pyi").read_text())
    stub: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            stub[node.name] = {
                n.name for n in node.body if isinstance(n, ast.FunctionDef) and n.name != "__new__"
            }
        elif isinstance(node, ast.FunctionDef):
            stub[node.name] = set()
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            stub[node.target.id] = set()
    runtime = {name for name in dir(_native) if not name.startswith("_")}
    assert set(stub) == runtime
    for name, members in stub.items():
        obj = getattr(_native, name)
        if inspect.isclass(obj):
            public = {m for m in vars(obj) if not m.startswith("_") or m == "__repr__"}
            assert members - {"__repr__"} == public - {"__repr__"}, name


def test_public_api_is_exported() -> None:
    for name in flowscope.__all__:
        assert hasattr(flowscope, name), name
    assert flowscope.__version__ == _native.SDK_VERSION


def test_http_client_libraries_are_imported_only_on_demand() -> None:
    proc = run_python(
        "import sys, flowscope, flowscope.integrations\n"
        "assert 'requests' not in sys.modules and 'httpx' not in sys.modules, sys.modules\n",
        child_env(None),
    )
    assert proc.returncode == 0, proc.stderr
