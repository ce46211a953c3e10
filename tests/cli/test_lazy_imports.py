"""Local tools start fast: `--help`, `validate`, `evaluate`, `score` import neither Prefect, Ray, MLflow nor torch."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

_PROBE = textwrap.dedent("""
    import json, sys
    from typer.testing import CliRunner
    from ferflow.cli import app
    r = CliRunner()
    codes = [r.invoke(app, args).exit_code for args in (
        ["--help"], ["validate", sys.argv[1]], ["score", sys.argv[1]],
        ["evaluate", "--bundle", sys.argv[2], "--data", sys.argv[2]])]
    heavy = sorted(m for m in ("prefect", "ray", "mlflow", "torch") if m in sys.modules)
    print(json.dumps({"codes": codes, "heavy": heavy}))
""")


def test_local_tools_import_no_orchestration(tmp_path):
    index = tmp_path / "index.parquet"
    index.write_bytes(b"not an index")  # refused (no manifest) after the command's own imports ran
    out = subprocess.run([sys.executable, "-c", _PROBE, str(index), str(tmp_path)], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    # help; an index without manifest (integrity); a log without its events (bad input); a folder that is no bundle
    assert got == {"codes": [0, 3, 2, 3], "heavy": []}
