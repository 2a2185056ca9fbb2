# deploy/: the Prometheus scrape config, the Grafana dashboard and the compose profile
# `monitoring`, checked statically (no Docker engine here), and every metric the
# dashboard queries checked against what a real server exports.
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, Dict

import pytest

from ktnchat.server import ChatServer
from tests.metrics.support import scrape

yaml = pytest.importorskip("yaml")
ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "ktnchat.json"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_the_monitoring_profile_adds_prometheus_and_grafana() -> None:
    services: Dict[str, Any] = load(ROOT / "docker-compose.yml")["services"]
    assert services["prometheus"]["profiles"] == ["monitoring"]
    assert services["grafana"]["profiles"] == ["monitoring"]
    for name in ("prometheus", "grafana"):
        assert re.search(r":v?\d+\.\d+", services[name]["image"]), "pin the image"
        for port in services[name]["ports"]:
            assert str(port).startswith("127.0.0.1:"), "published on this host only"
    mounts = " ".join(services["prometheus"]["volumes"] + services["grafana"]["volumes"])
    for path in (
        "deploy/prometheus.yml",
        "deploy/grafana/provisioning",
        "deploy/grafana/dashboards",
    ):
        assert f"./{path}" in mounts and (ROOT / path).exists()
    env = dict(e.split("=", 1) for e in services["ktnchat"]["environment"])
    assert env["KTNCHAT_METRICS_PORT"] == "9100"
    # The metrics port stays on the compose network: not published.
    assert all("9100" not in str(port) for port in services["ktnchat"]["ports"])


def test_prometheus_scrapes_the_metrics_port() -> None:
    config = load(ROOT / "deploy" / "prometheus.yml")
    job = config["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics"
    assert job["dns_sd_configs"][0]["names"] == ["ktnchat"]
    assert job["dns_sd_configs"][0]["port"] == 9100
    source = load(ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    assert source["datasources"][0]["uid"] == "prometheus"


def test_the_dashboard_queries_only_exported_metrics(
    server_factory: Callable[..., ChatServer],
) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert exprs
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "prometheus"
    used = set()
    for expr in exprs:
        used |= set(re.findall(r"\b((?:ktnchat|process)_[a-z_]+)", expr))
    server = server_factory(metrics_port=0)
    declared = scrape(server.metrics_address).families()
    missing = {
        name
        for name in used
        if name not in declared and re.sub(r"_(bucket|sum|count)$", "", name) not in declared
    }
    assert not missing, missing
