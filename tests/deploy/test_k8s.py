"""deploy/k8s: the manifests against Kubernetes' own schemas (offline), and what they promise.

`kubernetes-validate` ships the OpenAPI-derived JSON schemas of every Kubernetes release it
supports; strict mode rejects unknown fields, so a typo (`readinessProbes:`) fails here rather
than being dropped silently by the API server.
"""

from __future__ import annotations

import shlex
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from kubernetes_validate import utils as kv
from pydantic_settings import BaseSettings

from services.candidate.app import CandidateSettings
from services.gateway.settings import GatewaySettings
from services.ranker.app import RankerSettings
from services.trainer.settings import TrainerSettings
from shared.queue import QueueSettings
from shared.settings import CommonSettings
from ui.settings import UISettings

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
# The oldest release these manifests target (autoscaling/v2, policy/v1, Job TTL are GA there)
# and the newest whose schemas the installed kubernetes-validate bundles.
VERSIONS = ("1.27.0", kv.latest_version())
IMAGE = "recsys"
APP_UID = 10001  # the Dockerfile's USER
ROLES = ("gateway", "candidate", "ranker", "trainer", "beat", "ui")
SCALED = ("gateway", "candidate", "ranker")
SERVICE_PORTS = {
    "gateway": 8000,
    "candidate": 8001,
    "ranker": 8002,
    "ui": 8501,
    "redis": 6379,
    "trainer": 9100,
}
SETTINGS: tuple[type[BaseSettings], ...] = (
    CommonSettings,
    GatewaySettings,
    CandidateSettings,
    RankerSettings,
    TrainerSettings,
    QueueSettings,
    UISettings,
)
# Read by something other than our settings classes: the Redis server (its password).
OTHER_ENV = {"REDIS_PASSWORD"}

Doc = dict[str, Any]


def _settings_env_names() -> set[str]:
    names: set[str] = set()
    for cls in SETTINGS:
        prefix = str(cls.model_config.get("env_prefix", ""))
        names.update(f"{prefix}{field}".upper() for field in cls.model_fields)
    return names


def _manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def _documents() -> list[Doc]:
    docs: list[Doc] = []
    for path in _manifest_files():
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


@pytest.fixture(scope="module")
def docs() -> list[Doc]:
    return _documents()


def _one(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _pod_spec(doc: Doc) -> Doc:
    spec: Doc = doc["spec"]["template"]["spec"]
    return spec


def _containers(docs: list[Doc]) -> Iterator[tuple[Doc, Doc]]:
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "Job"):
            for c in _pod_spec(d)["containers"]:
                yield d, c


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == [p.name for p in _manifest_files()]
    assert [i["name"] for i in kustomization["images"]] == [IMAGE]
    assert kustomization["namespace"] == "recsys"


@pytest.mark.parametrize("version", VERSIONS)
def test_manifests_validate_offline(
    docs: list[Doc], version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("kubernetes-validate tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    assert len(docs) >= 20
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            kv.validate(doc, version, strict=True)
        except kv.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{name} is invalid for Kubernetes {version} at {path}: {exc.message}")
        except kv.SchemaNotFoundError as exc:
            pytest.fail(f"{name}: {exc.message}")


def test_the_validator_rejects_mistakes(docs: list[Doc]) -> None:
    deployment = _one(docs, "Deployment", "gateway")
    typo = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kv.ValidationError):
        kv.validate(typo, VERSIONS[0], strict=True)
    container = {**_pod_spec(deployment)["containers"][0], "readinessProbe": {"httpGet": {}}}
    template = {**deployment["spec"]["template"], "spec": {"containers": [container]}}
    broken = {**deployment, "spec": {**deployment["spec"], "template": template}}
    with pytest.raises(kv.ValidationError, match="port"):
        kv.validate(broken, VERSIONS[0], strict=True)


def test_every_role_has_a_deployment_and_its_service(docs: list[Doc]) -> None:
    for role in ROLES:
        deployment = _one(docs, "Deployment", role)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for name, port in SERVICE_PORTS.items():
        service = _one(docs, "Service", name)
        [svc_port] = service["spec"]["ports"]
        assert svc_port["port"] == port, name
        workload = next(
            d
            for d in docs
            if d["kind"] in ("Deployment", "StatefulSet") and d["metadata"]["name"] == name
        )
        pod_labels = workload["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= pod_labels.items(), name
        container_ports = {
            p["name"]: p["containerPort"] for p in _pod_spec(workload)["containers"][0]["ports"]
        }
        assert container_ports[svc_port["targetPort"]] == port, name


def test_hpa_for_the_stateless_services(docs: list[Doc]) -> None:
    hpas = {d["metadata"]["name"]: d for d in docs if d["kind"] == "HorizontalPodAutoscaler"}
    assert set(hpas) == set(SCALED)
    for role, hpa in hpas.items():
        assert hpa["apiVersion"] == "autoscaling/v2"
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", role)
        assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
        [metric] = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
        # Utilization is relative to the request: without one the HPA cannot act.
        container = _pod_spec(_one(docs, "Deployment", role))["containers"][0]
        assert container["resources"]["requests"]["cpu"]
        assert _one(docs, "PodDisruptionBudget", role)["spec"]["minAvailable"] == 1


def test_beat_is_a_singleton(docs: list[Doc]) -> None:
    beat = _one(docs, "Deployment", "beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}  # never two during an update
    beats = [c for _, c in _containers(docs) if "beat" in c.get("command", [])]
    assert len(beats) == 1
    worker = _pod_spec(_one(docs, "Deployment", "trainer"))["containers"][0]["command"]
    assert "worker" in worker and "-B" not in worker


def test_probes_resources_and_security(docs: list[Doc]) -> None:
    for workload, c in _containers(docs):
        name = workload["metadata"]["name"]
        requests, limits = c["resources"]["requests"], c["resources"]["limits"]
        assert requests["cpu"] and requests["memory"] and limits["memory"], name
        assert c["securityContext"]["allowPrivilegeEscalation"] is False, name
        assert c["securityContext"]["capabilities"]["drop"] == ["ALL"], name
        pod_security = _pod_spec(workload)["securityContext"]
        assert pod_security["runAsNonRoot"] is True, name
        if c["image"] == IMAGE:
            assert pod_security["runAsUser"] == APP_UID, name
        if workload["kind"] == "Job":
            continue
        assert c["livenessProbe"] and c["readinessProbe"], name
        ports = {p["name"] for p in c.get("ports", [])}
        for probe in (c["livenessProbe"], c["readinessProbe"]):
            if "httpGet" in probe:
                assert probe["httpGet"]["port"] in ports, name
    for role, port in (("gateway", 8000), ("candidate", 8001), ("ranker", 8002)):
        c = _pod_spec(_one(docs, "Deployment", role))["containers"][0]
        assert c["ports"] == [{"name": "http", "containerPort": port}]
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", role
        # The stages take traffic once a model is loaded. The gateway stays in its Service
        # while a stage is down, because it still answers then (degraded): see gateway.yaml.
        expected = "/healthz" if role == "gateway" else "/readyz"
        assert c["readinessProbe"]["httpGet"]["path"] == expected, role
    assert "inspect ping" in " ".join(
        _pod_spec(_one(docs, "Deployment", "trainer"))["containers"][0]["livenessProbe"]["exec"][
            "command"
        ]
    )


def test_one_image_and_the_compose_commands(docs: list[Doc]) -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    images = {c["image"] for _, c in _containers(docs) if not c["image"].startswith("redis:")}
    assert images == {IMAGE}
    for role in (*ROLES, "bootstrap"):
        kind = "Job" if role == "bootstrap" else "Deployment"
        [c] = _pod_spec(_one(docs, kind, role))["containers"]
        expected = shlex.split(compose[role]["command"])
        # The same program and arguments as docker compose runs; k8s may add options after.
        assert c["command"][: len(expected)] == expected, role
    redis = _one(docs, "StatefulSet", "redis")
    assert redis["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
    assert "noeviction" in _pod_spec(redis)["containers"][0]["args"]


def test_environment_matches_the_settings(docs: list[Doc]) -> None:
    config = _one(docs, "ConfigMap", "recsys-config")["data"]
    secret = _one(docs, "Secret", "recsys-secrets")["stringData"]
    known = _settings_env_names()
    assert not (config.keys() - known), f"unknown settings: {config.keys() - known}"
    assert not (secret.keys() - known - OTHER_ENV), f"unknown: {secret.keys() - known}"
    assert not config.keys() & secret.keys()
    for name in ("RECSYS_REDIS_URL", "GATEWAY_ADMIN_API_KEY", "UI_ADMIN_API_KEY"):
        assert name in secret and name not in config, name  # credentials: Secret only
    assert secret["GATEWAY_ADMIN_API_KEY"] == secret["UI_ADMIN_API_KEY"]

    # Every URL points at a Service that exists, on its port.
    for key, service in (
        ("GATEWAY_CANDIDATE_URL", "candidate"),
        ("GATEWAY_RANKER_URL", "ranker"),
        ("UI_GATEWAY_URL", "gateway"),
    ):
        url = urlparse(config[key])
        assert (url.hostname, url.port) == (service, SERVICE_PORTS[service]), key
    redis_url = urlparse(secret["RECSYS_REDIS_URL"])
    assert (redis_url.hostname, redis_url.port) == ("redis", SERVICE_PORTS["redis"])
    assert redis_url.password == secret["REDIS_PASSWORD"]
    trainer = _pod_spec(_one(docs, "Deployment", "trainer"))["containers"][0]
    assert int(config["TRAINER_METRICS_PORT"]) == trainer["ports"][0]["containerPort"]

    for workload, c in _containers(docs):
        if c["image"] != IMAGE:
            continue
        refs = {
            (k, v["name"]) for source in c["envFrom"] for k, v in source.items() if k != "prefix"
        }
        assert refs == {("configMapRef", "recsys-config"), ("secretRef", "recsys-secrets")}, (
            workload["metadata"]["name"]
        )
