"""Layering rule: importing fer_core (every module of it) pulls in no orchestration package."""

import json
import pkgutil
import subprocess
import sys

import fer_core

FORBIDDEN = ("prefect", "ray", "mlflow", "boto3", "botocore", "flows", "tasks")


def test_fer_core_imports_no_orchestration():
    modules = [m.name for m in pkgutil.walk_packages(fer_core.__path__, "fer_core.")]
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(json.dumps(sorted(k for k in sys.modules if k.split('.')[0] in {FORBIDDEN!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    leaked = json.loads(out.stdout.strip().splitlines()[-1])
    assert leaked == [], f"fer_core pulled in orchestration modules: {leaked}"
    assert len(modules) > 5


def _imported_by(package: str) -> list[str]:
    """Top-level packages that importing every module of ``package`` pulls in (in a fresh interpreter)."""
    code = (
        "import importlib, json, pkgutil, sys\n"
        f"pkg = importlib.import_module({package!r})\n"
        f"for m in pkgutil.walk_packages(pkg.__path__, {package + '.'!r}): importlib.import_module(m.name)\n"
        "print(json.dumps(sorted({k.split('.')[0] for k in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_fer_core_imports_no_upper_layer():
    leaked = set(_imported_by("fer_core")) & {"fer_spec", "fer_adapters"}
    assert not leaked, f"fer_core imports {leaked}"


def test_fer_spec_is_schemas_only():
    """The profile schema, stage results and settings import no orchestration system and no upper layer."""
    leaked = set(_imported_by("fer_spec")) & {"prefect", "ray", "mlflow", "boto3", "fer_adapters", "tasks", "flows"}
    assert not leaked, f"fer_spec imports {leaked}"


def test_adapters_import_no_tasks_or_flows():
    leaked = set(_imported_by("fer_adapters")) & {"tasks", "flows", "ferflow"}
    assert not leaked, f"fer_adapters imports {leaked}"


def test_tasks_modules_define_prefect_tasks():
    """``tasks/`` holds Prefect tasks only: every module defines at least one, and imports no flow."""
    import importlib
    import pathlib

    from prefect import Task

    root = pathlib.Path(__file__).resolve().parents[2] / "tasks"
    for path in sorted(root.glob("*.py")):
        if path.name == "__init__.py":
            continue
        assert not path.name.startswith("_"), f"{path.name}: private machinery belongs in fer_adapters/"
        mod = importlib.import_module(f"tasks.{path.stem}")
        assert any(isinstance(v, Task) for v in vars(mod).values()), f"tasks/{path.name} defines no Prefect task"
    assert "flows" not in _imported_by("tasks")
