"""The deployment: the Kubernetes manifests (deploy/k8s) against the API's schemas
(kubernetes-validate, strict), what they say matched to what codemode does (the config
and tokens they carry parse, the probes and ports are codemode's, the grace period covers
the drain), and the image's build steps (deploy/image.sh, which the Dockerfile runs) run
for real: installed from this checkout, the sandbox built in, a server that starts on
the read-only result and is ready within seconds. (No container runtime here: the image
itself is not built; its steps are.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import kubernetes_validate
import pytest
import yaml
from serve_client import free_port, no_user_config, wait_for_port

from codemode.config import parse_config
from codemode.server import _auth

ROOT = Path(__file__).parent.parent
DEPLOY = ROOT / "deploy"
MANIFESTS = sorted((DEPLOY / "k8s").glob("*.yaml"))


def resources() -> dict[str, dict]:
    return {doc["kind"]: doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text())}


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifests_are_valid_kubernetes(path):
    for doc in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_manifests_say_what_codemode_does(monkeypatch):
    found = resources()
    assert set(found) >= {"ConfigMap", "Secret", "Deployment", "Service", "HorizontalPodAutoscaler"}
    monkeypatch.setenv("CODEMODE_STATE_KEY", "k" * 64)
    config = parse_config(json.loads(found["ConfigMap"]["data"]["config.json"]), "configmap")
    assert config.codemode.http.stateless
    entries = _auth.parse_tokens(found["Secret"]["stringData"]["tokens.txt"], "secret")
    assert [e.name for e in entries] == ["alice"]
    pod = found["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["ports"][0]["containerPort"] == 8000
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["terminationGracePeriodSeconds"] > config.codemode.http.drain_s
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "USER 10001" in dockerfile and "deploy/image.sh" in dockerfile
    assert '"--port", "8000"' in dockerfile


def test_the_image_build_steps_run_and_a_pod_is_ready_in_seconds(tmp_path):
    prefix = tmp_path / "opt"
    built = subprocess.run(
        ["bash", str(DEPLOY / "image.sh"), str(prefix), str(ROOT)],
        capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    cache = prefix / "cache"
    assert not os.access(cache / "sandbox", os.W_OK) or os.geteuid() == 0
    # the native worker is built into the image too, where a compiler is (the Dockerfile
    # installs one for the build and removes it)
    assert "native worker:" in built.stderr
    assert len(list(cache.rglob("codemode-worker"))) == (1 if shutil.which("cc") else 0)
    config = tmp_path / "config.json"
    config.write_text("{}")
    port = free_port()
    env = {
        **no_user_config(tmp_path), "CODEMODE_CACHE_DIR": str(cache),
        "CODEMODE_SHAPES_FILE": str(tmp_path / "shapes.json"),
        "CODEMODE_DATA_DIR": str(tmp_path / "data"),
    }  # fmt: skip
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(prefix / "venv" / "bin" / "codemode"), "serve", "--transport", "http", "--port",
         str(port), "--config", str(config)],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        wait_for_port(port, 30)
        while httpx2.get(f"http://127.0.0.1:{port}/readyz").status_code != 200:
            assert time.monotonic() - started < 30, "not ready"
            time.sleep(0.1)
        ready_s = time.monotonic() - started
    finally:
        proc.terminate()
        err = proc.communicate(timeout=60)[1]
    assert ready_s < 10, f"ready after {ready_s:.1f} s"
    assert "building" not in err.lower(), err  # the sandbox came built with the image
    print(f"ready {ready_s:.2f} s after start", file=sys.stderr)
