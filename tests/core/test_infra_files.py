"""infra/ without Docker or a cluster: files parse, names/ports agree with fer_spec/settings.py, GPU pieces exist."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest
import yaml

from fer_spec.settings import Settings

INFRA = Path(__file__).resolve().parents[2] / "infra"
REPO = INFRA.parent
CLIENT_VARS = ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "FERFLOW_RAY_ADDRESS", "MLFLOW_S3_ENDPOINT_URL",
               "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN")  # fmt: skip


def _yaml_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


@pytest.fixture(scope="module")
def compose() -> dict:
    return _yaml_docs(INFRA / "compose.yaml")[0]


@pytest.fixture(scope="module")
def k8s() -> list[dict]:
    return [doc for p in sorted((INFRA / "k8s").glob("*.yaml")) for doc in _yaml_docs(p)]


@pytest.fixture(scope="module")
def template() -> dict:
    return json.loads((INFRA / "work-pools" / "gpu-base-job-template.json").read_text())


@pytest.fixture
def default_settings(monkeypatch, tmp_path) -> Settings:
    for name in ("FERFLOW_PREFECT_PORT", "FERFLOW_MLFLOW_PORT", "FERFLOW_RAY_PORT", "FERFLOW_RAY_DASHBOARD_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FERFLOW_HOME", str(tmp_path))
    return Settings.from_env()


def test_every_yaml_file_parses():
    files = sorted(INFRA.rglob("*.yaml"))
    assert len(files) >= 5
    for path in files:
        assert _yaml_docs(path), f"{path} holds no YAML document"


def _published(service: dict) -> dict[int, tuple[str, int]]:
    """container port -> (host port variable, its default) from '127.0.0.1:${VAR:-default}:container'."""
    out = {}
    for spec in service.get("ports", []):
        m = re.fullmatch(r"127\.0\.0\.1:\$\{(\w+):-(\d+)\}:(\d+)", spec)
        if m:
            out[int(m.group(3))] = (m.group(1), int(m.group(2)))
    return out


def test_compose_host_ports_use_the_settings_variables_and_defaults(compose, default_settings):
    services = compose["services"]
    expected = {
        ("prefect-server", 4200): ("FERFLOW_PREFECT_PORT", default_settings.prefect_port),
        ("mlflow", 5000): ("FERFLOW_MLFLOW_PORT", default_settings.mlflow_port),
        ("ray-head", 6379): ("FERFLOW_RAY_PORT", default_settings.ray_port),
        ("ray-head", 8265): ("FERFLOW_RAY_DASHBOARD_PORT", default_settings.ray_dashboard_port),
    }
    for (service, container_port), want in expected.items():
        assert _published(services[service]).get(container_port) == want, service
    for name, service in services.items():
        for spec in service.get("ports", []):
            assert spec.startswith("127.0.0.1:"), f"{name} publishes {spec} beyond loopback"


def _command_port(service: dict) -> int:
    text = " ".join(map(str, service["command"]))
    return int(re.search(r"--port[= ](\d+)", text).group(1))


def test_compose_client_env_points_at_the_right_services(compose):
    services = compose["services"]
    for worker in ("worker-cpu", "worker-gpu", "ray-gpu-worker"):
        env = services[worker]["environment"]
        assert set(CLIENT_VARS) <= set(env), f"{worker} lacks {set(CLIENT_VARS) - set(env)}"
        assert env["PREFECT_API_URL"] == f"http://prefect-server:{_command_port(services['prefect-server'])}/api"
        assert env["MLFLOW_TRACKING_URI"] == f"http://mlflow:{_command_port(services['mlflow'])}"
        assert env["FERFLOW_RAY_ADDRESS"] == f"ray-head:{_command_port(services['ray-head'])}"
    pools = {services[w]["command"][services[w]["command"].index("--pool") + 1] for w in ("worker-cpu", "worker-gpu")}
    assert pools == {"cpu", "gpu"}
    for name, service in services.items():
        for dep in service.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown service {dep}"


def test_compose_gpu_services_reserve_an_nvidia_device(compose):
    for name in ("worker-gpu", "ray-gpu-worker"):
        devices = compose["services"][name]["deploy"]["resources"]["reservations"]["devices"]
        assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices), name


def test_local_stack_and_compose_export_the_same_client_variables(compose, default_settings):
    from ferflow.stack import stack_env

    # compose passes the token itself; its containers talk over their network, not one machine's loopback
    local = set(stack_env(default_settings)) - {"RAY_AUTH_TOKEN_PATH", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
    assert local <= set(compose["services"]["worker-cpu"]["environment"])


def test_ferflow_variables_in_infra_are_read_by_the_code(compose, k8s):
    packages = ("tasks", "ferflow", "flows", "fer_spec", "fer_adapters")  # settings and adapters moved (issue 20)
    code = "".join(p.read_text() for d in packages for p in (REPO / d).rglob("*.py"))
    config = next(d for d in k8s if d["kind"] == "ConfigMap")
    names = set(compose["services"]["worker-cpu"]["environment"]) | set(config["data"])
    unread = sorted(n for n in names if n.startswith("FERFLOW_") and n not in code)
    assert unread == [], f"infra sets variables no code reads: {unread}"


def test_k8s_manifests_are_well_formed(k8s):
    assert len(k8s) >= 8
    for doc in k8s:
        assert {"apiVersion", "kind", "metadata"} <= set(doc), doc
        assert doc["metadata"].get("name"), doc
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "ferflow", doc["metadata"]
    for dep in (d for d in k8s if d["kind"] == "Deployment"):
        assert dep["spec"]["selector"]["matchLabels"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    deployments = [d["spec"]["template"]["metadata"]["labels"] for d in k8s if d["kind"] == "Deployment"]
    for svc in (d for d in k8s if d["kind"] == "Service"):
        assert any(svc["spec"]["selector"].items() <= labels.items() for labels in deployments), svc["metadata"]


def test_raycluster_has_a_gpu_worker_group_and_matches_the_client_address(k8s):
    cluster = next(d for d in k8s if d["kind"] == "RayCluster")
    assert cluster["apiVersion"] == "ray.io/v1"
    gpu_groups = [
        g for g in cluster["spec"]["workerGroupSpecs"]
        if any(int(c["resources"]["limits"].get("nvidia.com/gpu", 0)) >= 1 for c in g["template"]["spec"]["containers"])
    ]  # fmt: skip
    assert gpu_groups and all(g["rayStartParams"]["num-gpus"] == "1" for g in gpu_groups)
    config = next(d for d in k8s if d["kind"] == "ConfigMap")
    assert config["data"]["FERFLOW_RAY_ADDRESS"].startswith(f"{cluster['metadata']['name']}-head-svc.")


def test_prefect_workers_poll_both_pools_as_kubernetes(k8s):
    args = [d["spec"]["template"]["spec"]["containers"][0]["args"] for d in k8s if d["kind"] == "Deployment"]
    pools = {a[a.index("--pool") + 1]: a[a.index("--type") + 1] for a in args if "worker" in a}
    assert pools == {"cpu": "kubernetes", "gpu": "kubernetes"}


def test_gpu_work_pool_template_validates_with_prefect(template):
    from prefect.server.schemas.actions import WorkPoolCreate, validate_base_job_template
    from prefect.utilities.schema_tools import ValidationError, validate

    validate_base_job_template(template)
    WorkPoolCreate(name="gpu", type="kubernetes", base_job_template=template)
    schema = template["variables"]
    validate({"gpu_count": 2, "image": "ferflow-gpu:1.0"}, schema, raise_on_error=True, preprocess=True,
             ignore_required=True)  # fmt: skip
    with pytest.raises(ValidationError, match="gpu_count"):
        validate({"gpu_count": 0}, schema, raise_on_error=True, preprocess=True, ignore_required=True)


def test_gpu_template_renders_a_job_with_a_gpu_limit(template, k8s):
    from prefect.utilities.templating import apply_values

    defaults = {k: v["default"] for k, v in template["variables"]["properties"].items() if "default" in v}
    rendered = apply_values(template["job_configuration"], {**defaults, "gpu_count": 2})
    pod = rendered["job_manifest"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert rendered["job_manifest"]["kind"] == "Job" and rendered["namespace"] == "ferflow"
    refs = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
    defined = {d["metadata"]["name"] for d in k8s if d["kind"] in ("ConfigMap", "Secret")}
    assert refs <= defined


# Shared nothing (issue 20): every ferflow process reads and writes the artifact store on S3; no disk is shared.
COMPOSE_FERFLOW = ("worker-cpu", "worker-gpu", "ray-head", "ray-gpu-worker", "ray-cpu-worker")
S3_VARS = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def _named_volumes(service: dict, top_level: dict) -> dict[str, str]:
    """named volume -> mount path for a compose service (short syntax ``name:/path`` or long syntax)."""
    out = {}
    for v in service.get("volumes", []):
        source, target = (v.split(":")[:2] if isinstance(v, str) else (v.get("source"), v.get("target")))
        if source in top_level:
            out[source] = target
    return out


def test_compose_shares_no_volume_between_prefect_and_ray_workers(compose):
    services, volumes = compose["services"], compose.get("volumes") or {}
    assert set(COMPOSE_FERFLOW) <= set(services)
    mounts = {name: _named_volumes(services[name], volumes) for name in COMPOSE_FERFLOW}
    for name, named in mounts.items():
        home = services[name]["environment"]["FERFLOW_HOME"]
        assert home not in named.values(), f"{name} mounts a named volume at its FERFLOW_HOME {home}"
    for a, b in itertools.combinations(COMPOSE_FERFLOW, 2):
        assert not set(mounts[a]) & set(mounts[b]), f"{a} and {b} share the volume(s) {set(mounts[a]) & set(mounts[b])}"
    assert "ferflow-home" not in volumes


def _minio_bucket(compose: dict) -> str:
    return compose["services"]["minio-init"]["environment"]["FERFLOW_BUCKET"]


def test_compose_points_every_ferflow_service_at_the_store_on_minio(compose):
    services = compose["services"]
    bucket = re.fullmatch(r"\$\{FERFLOW_BUCKET:-(\w+)\}", _minio_bucket(compose)).group(1)
    minio_port = int(services["minio"]["ports"][0].rsplit(":", 1)[1])
    minio_user = services["minio"]["environment"]["MINIO_ROOT_USER"]
    for name in COMPOSE_FERFLOW:
        env = services[name]["environment"]
        store = env.get("FERFLOW_STORE", "")
        assert re.fullmatch(rf"s3://\$\{{FERFLOW_BUCKET:-{bucket}\}}/\w+", store), f"{name}: FERFLOW_STORE={store!r}"
        assert set(S3_VARS) <= set(env), f"{name} lacks {set(S3_VARS) - set(env)}"
        assert env["AWS_ENDPOINT_URL"] == f"http://minio:{minio_port}", name
        assert env["AWS_ACCESS_KEY_ID"] == minio_user, f"{name} does not use MinIO's user"
        assert "MINIO_ROOT_PASSWORD" in env["AWS_SECRET_ACCESS_KEY"], f"{name} does not use MinIO's password"
        if name != "ray-head":  # the head runs no units (--num-cpus=0)
            assert services[name]["depends_on"]["minio-init"] == {"condition": "service_completed_successfully"}
    assert "mc mb" in " ".join(services["minio-init"]["command"])


def _pods(k8s: list[dict]) -> dict[str, dict]:
    """Every ferflow pod spec (Ray head, each Ray worker group, each Prefect worker) by a readable name."""
    cluster = next(d for d in k8s if d["kind"] == "RayCluster")
    pods = {"ray-head": cluster["spec"]["headGroupSpec"]["template"]["spec"]}
    pods |= {f"ray-{g['groupName']}": g["template"]["spec"] for g in cluster["spec"]["workerGroupSpecs"]}
    pods |= {d["metadata"]["name"]: d["spec"]["template"]["spec"] for d in k8s
             if d["kind"] == "Deployment" and d["metadata"]["name"].startswith("prefect-worker")}  # fmt: skip
    return pods


def test_k8s_points_every_ferflow_pod_at_the_store_with_secret_credentials(k8s):
    config = next(d for d in k8s if d["kind"] == "ConfigMap")["data"]
    secret = next(d for d in k8s if d["kind"] == "Secret")
    assert config["FERFLOW_STORE"].startswith("s3://") and config["AWS_ENDPOINT_URL"].startswith("http")
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(secret["stringData"])
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(config), "credentials belong in the Secret"
    pods = _pods(k8s)
    assert {"ray-head", "ray-gpu", "ray-cpu", "prefect-worker-cpu", "prefect-worker-gpu"} <= set(pods)
    for name, pod in pods.items():
        for c in pod["containers"]:
            refs = {(kind, ref["name"]) for r in c.get("envFrom", []) for kind, ref in r.items()}
            assert {("configMapRef", "ferflow-env"), ("secretRef", "ferflow-secrets")} <= refs, (name, refs)
    minio = next(d for d in k8s if d["kind"] == "Service" and d["metadata"]["name"] == "minio")
    host, port = config["AWS_ENDPOINT_URL"].removeprefix("http://").split(":")
    assert host.split(".")[0] == "minio" and int(port) in {p["port"] for p in minio["spec"]["ports"]}
    bucket_job = next(d for d in k8s if d["kind"] == "Job")
    assert "mc mb" in " ".join(bucket_job["spec"]["template"]["spec"]["containers"][0]["args"])


def test_k8s_ferflow_home_is_each_pods_own_empty_dir(k8s):
    home = next(d for d in k8s if d["kind"] == "ConfigMap")["data"]["FERFLOW_HOME"]
    for name, pod in _pods(k8s).items():
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        shared = [v for v in volumes.values() if set(v) & {"persistentVolumeClaim", "hostPath", "nfs", "csi"}]
        assert not shared, f"{name} mounts a disk another pod may share: {shared}"
        for c in pod["containers"]:
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            assert home in mounts and "emptyDir" in volumes[mounts[home]], f"{name}: FERFLOW_HOME is not an emptyDir"
