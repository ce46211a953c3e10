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
