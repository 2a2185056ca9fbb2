# Docker packaging, checked statically (no Docker engine is needed): docker-compose.yml
# parsed with PyYAML, the Dockerfile parsed line by line, and the Dockerfile's entry
# command compared with the one README.md documents under "Persistent chat", so the two
# cannot drift apart. Then `ktnchat health` as a subprocess against a real server, a
# closed port, a listener that never answers and one that answers with an error.
# Rules: loopback only; every socket, server and process is closed or stopped; every
# wait is bounded (no sleeps).
from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

from tests.helpers import start_server

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
HEALTH_TIMEOUT = 2.0  # the --timeout given to `ktnchat health`
PROCESS_LIMIT = 30.0  # a health process still running after this is a hang: fail

# -- docker-compose.yml --------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> Dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _service(compose: Dict[str, Any], name: str) -> Dict[str, Any]:
    service = compose["services"][name]
    assert isinstance(service, dict), name
    return service


def _environment(service: Dict[str, Any]) -> Dict[str, str]:
    """Compose accepts a list of NAME=value or a mapping."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _published(port: Any) -> Tuple[str, str]:
    """(host port, container port) of a short ("[ip:]host:container[/proto]") or long entry."""
    if isinstance(port, dict):
        return str(port.get("published", "")), str(port["target"])
    parts = str(port).split("/")[0].rsplit(":", 2)
    return (parts[-2] if len(parts) >= 2 else ""), parts[-1]


def test_compose_has_the_two_services(compose: Dict[str, Any]) -> None:
    default = {n for n, s in compose["services"].items() if not s.get("profiles")}
    assert default == {"ktnchat", "mongo"}  # `--profile monitoring` adds the rest
    assert "build" in _service(compose, "ktnchat")
    assert _service(compose, "ktnchat").get("restart") == "unless-stopped"


def test_mongo_image_is_pinned_to_a_major_version(compose: Dict[str, Any]) -> None:
    image = _service(compose, "mongo")["image"]
    assert re.fullmatch(r"mongo:\d+(\.\d+){0,2}(-[\w.-]+)?", image), image


def test_mongo_data_is_a_named_volume_at_data_db(compose: Dict[str, Any]) -> None:
    assert "mongo-data" in (compose.get("volumes") or {})
    mounts = _service(compose, "mongo").get("volumes") or []
    targets = {}
    for mount in mounts:
        if isinstance(mount, dict):
            targets[mount["target"]] = mount.get("source")
        else:
            source, target = str(mount).split(":")[:2]
            targets[target] = source
    assert targets.get("/data/db") == "mongo-data"


def test_both_services_have_healthchecks(compose: Dict[str, Any]) -> None:
    for name in ("ktnchat", "mongo"):
        check = _service(compose, name).get("healthcheck")
        assert isinstance(check, dict) and check.get("test"), name
        assert not check.get("disable"), name
    mongo_test = " ".join(_service(compose, "mongo")["healthcheck"]["test"])
    assert "mongosh" in mongo_test and "ping" in mongo_test
    assert _service(compose, "ktnchat")["healthcheck"]["test"][1:3] == ["ktnchat", "health"]


def test_ktnchat_waits_for_a_healthy_mongo(compose: Dict[str, Any]) -> None:
    depends = _service(compose, "ktnchat")["depends_on"]
    assert isinstance(depends, dict), "the long form is needed for a condition"
    assert depends["mongo"]["condition"] == "service_healthy"


def test_port_9998_is_published(compose: Dict[str, Any]) -> None:
    ports = [_published(p) for p in _service(compose, "ktnchat").get("ports") or []]
    assert ("9998", "9998") in ports


def test_ktnchat_stores_in_the_mongo_service(compose: Dict[str, Any]) -> None:
    env = _environment(_service(compose, "ktnchat"))
    assert re.match(r"mongodb://mongo[:/]", env["KTNCHAT_STORAGE"]), env["KTNCHAT_STORAGE"]


# -- Dockerfile ----------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> List[Tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, continuation lines joined."""
    instructions: List[Tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):  # comments may sit inside a continuation
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        instructions.append((word.upper(), rest.strip()))
    assert not pending, "Dockerfile ends inside a continuation line"
    return instructions


def _exec_form(arguments: str) -> List[str]:
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), arguments
    return value


@pytest.fixture(scope="module")
def dockerfile() -> List[Tuple[str, str]]:
    return dockerfile_instructions((ROOT / "Dockerfile").read_text(encoding="utf-8"))


def _last(instructions: List[Tuple[str, str]], word: str) -> Optional[str]:
    found = [args for name, args in instructions if name == word]
    return found[-1] if found else None


def dockerfile_command(instructions: List[Tuple[str, str]]) -> List[str]:
    """What the container runs: ENTRYPOINT + CMD, both required in exec form (JSON)."""
    entrypoint = _last(instructions, "ENTRYPOINT")
    cmd = _last(instructions, "CMD")
    assert cmd is not None or entrypoint is not None, "no CMD or ENTRYPOINT"
    return (_exec_form(entrypoint) if entrypoint else []) + (_exec_form(cmd) if cmd else [])


def readme_entry_command() -> List[str]:
    """The fenced block following the words "entry command" in the Persistent chat section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Persistent chat\n(.*?)^## ", readme, re.M | re.S)
    assert section, "README.md has no '## Persistent chat' section (followed by another)"
    body = section.group(1)
    mention = re.search(r"entry\s+command", body)
    assert mention, "the Persistent chat section does not name the entry command"
    block = re.compile(r"^```[\w-]*\n(.*?)^```$", re.M | re.S).search(body, mention.end())
    assert block, "no fenced code block after the words 'entry command'"
    lines = [line for line in block.group(1).splitlines() if line.strip()]
    assert len(lines) == 1, f"the entry command block should hold one command: {lines!r}"
    return shlex.split(lines[0])


def test_base_image_is_a_pinned_slim_python(dockerfile: List[Tuple[str, str]]) -> None:
    froms = [args.split() for name, args in dockerfile if name == "FROM"]
    assert froms, "no FROM"
    image = next(word for word in froms[-1] if not word.startswith("--"))  # skip --platform=
    assert re.fullmatch(r"python:3\.\d+(\.\d+)?-slim(-\w+)?", image), image


def test_runs_as_a_non_root_user(dockerfile: List[Tuple[str, str]]) -> None:
    user = _last(dockerfile, "USER")
    assert user is not None, "no USER: the server would run as root"
    assert user.split(":")[0] not in ("root", "0")
    names = [name for name, _ in dockerfile]
    assert names.index("USER") < names.index("CMD"), "USER must precede the command"


def test_installs_the_package_with_the_mongo_extra(dockerfile: List[Tuple[str, str]]) -> None:
    runs = " ".join(args for name, args in dockerfile if name == "RUN")
    assert re.search(r"pip install [^&]*--no-cache-dir[^&]*\.\[mongo[,\]]", runs), runs
    for name, args in dockerfile:
        if name == "COPY":
            sources = args.split()[:-1]
            for source in sources:
                if not source.startswith("--"):
                    assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    assert (ROOT / ".dockerignore").is_file()


def test_listens_on_every_interface_on_9998(dockerfile: List[Tuple[str, str]]) -> None:
    env = " ".join(args for name, args in dockerfile if name == "ENV")
    assert re.search(r"\bKTNCHAT_HOST=0\.0\.0\.0\b", env), env
    exposed = " ".join(args for name, args in dockerfile if name == "EXPOSE").split()
    assert "9998" in exposed or "9998/tcp" in exposed


def test_healthcheck_runs_ktnchat_health(dockerfile: List[Tuple[str, str]]) -> None:
    check = _last(dockerfile, "HEALTHCHECK")
    assert check is not None and check.upper() != "NONE"
    match = re.search(r"(?:^|\s)CMD\s+(.*)$", check)
    assert match, check
    assert _exec_form(match.group(1))[:2] == ["ktnchat", "health"]


def test_entry_command_is_the_one_the_readme_documents(
    dockerfile: List[Tuple[str, str]],
) -> None:
    command = dockerfile_command(dockerfile)
    assert command == ["ktnchat", "server"]
    assert command == readme_entry_command()


def test_dockerfile_parser_joins_continuations_and_skips_comments() -> None:
    text = '# c\nFROM python:3.12-slim\nRUN a \\\n  # inside\n  && b\nCMD ["x", "y"]\n'
    assert dockerfile_instructions(text) == [
        ("FROM", "python:3.12-slim"),
        ("RUN", "a && b"),
        ("CMD", '["x", "y"]'),
    ]


# -- ktnchat health ------------------------------------------------------------------------


def _health_argv(*args: str) -> List[str]:
    return [sys.executable, "-m", "ktnchat", "health", *args]


def _health_env(**extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KTNCHAT_")}
    env.update(extra)
    return env


def run_health(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _health_argv(*args),
        cwd=ROOT,
        env=_health_env(**env),
        capture_output=True,
        text=True,
        timeout=PROCESS_LIMIT,
    )


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback TCP listener that never answers by itself."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock
    finally:
        sock.close()


def test_health_passes_against_a_real_server() -> None:
    server = start_server()
    try:
        port = server.address[1]
        done = run_health("127.0.0.1", str(port), "--timeout", str(HEALTH_TIMEOUT))
        assert done.returncode == 0, done.stderr
        assert "ok" in done.stdout
        # No arguments: 127.0.0.1 and the port from KTNCHAT_PORT.
        done = run_health("--timeout", str(HEALTH_TIMEOUT), KTNCHAT_PORT=str(port))
        assert done.returncode == 0, done.stderr
    finally:
        server.shutdown()


def test_health_fails_clearly_on_a_closed_port() -> None:
    # Bound but not listening: on Linux and macOS connections are refused, and nobody else
    # can take the port while we hold it.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        done = run_health("127.0.0.1", str(port), "--timeout", str(HEALTH_TIMEOUT))
    finally:
        sock.close()
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"cannot connect to 127.0.0.1:{port}" in lines[0]
    assert "refused" in lines[0].lower()


def test_health_fails_within_the_timeout_on_a_silent_listener(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    started = time.monotonic()
    done = run_health("127.0.0.1", str(port), "--timeout", str(HEALTH_TIMEOUT))
    took = time.monotonic() - started
    assert done.returncode == 1
    assert "no info response within" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert HEALTH_TIMEOUT <= took < HEALTH_TIMEOUT + 10, took  # waited, but bounded
    # The kernel accepted the connection; the probe was the help request.
    listener.settimeout(5.0)
    conn, _ = listener.accept()
    with conn:
        conn.settimeout(5.0)
        assert json.loads(conn.recv(4096)) == {"request": "help", "content": None}


def test_health_fails_on_an_error_response(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    proc = subprocess.Popen(
        _health_argv("127.0.0.1", str(port), "--timeout", str(HEALTH_TIMEOUT)),
        cwd=ROOT,
        env=_health_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        listener.settimeout(PROCESS_LIMIT)
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(PROCESS_LIMIT)
            conn.recv(4096)
            conn.sendall(b'{"timestamp":"t","sender":"","response":"error","content":"Full"}')
            _, stderr = proc.communicate(timeout=PROCESS_LIMIT)
    finally:
        if proc.poll() is None:  # only when something above failed
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1
    assert "answered 'error' instead of 'info'" in stderr and "Full" in stderr, stderr


def test_health_usage_errors_exit_1() -> None:
    done = run_health("127.0.0.1", "not-a-port")
    assert done.returncode == 1
    assert "bad port" in done.stderr


# --- the cluster compose file ----------------------------------------------------------------


@pytest.fixture
def cluster_compose() -> Dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.cluster.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_cluster_compose_runs_replicas_behind_a_tcp_balancer(
    cluster_compose: Dict[str, Any],
) -> None:
    services = cluster_compose["services"]
    assert set(services) == {"haproxy", "ktnchat", "redis", "mongo"}
    ktnchat = _service(cluster_compose, "ktnchat")
    assert ktnchat["deploy"]["replicas"] >= 2
    env = _environment(ktnchat)
    assert env["KTNCHAT_BUS"].startswith("redis://redis:")
    assert env["KTNCHAT_STORAGE"].startswith("mongodb://mongo:")
    assert ktnchat["depends_on"]["redis"]["condition"] == "service_healthy"
    assert ktnchat["depends_on"]["mongo"]["condition"] == "service_healthy"
    assert "ports" not in ktnchat  # only the balancer is published
    haproxy = _service(cluster_compose, "haproxy")
    assert any(_published(p) == ("9998", "9998") for p in haproxy["ports"])
    for name in ("ktnchat", "redis", "mongo"):
        assert "healthcheck" in _service(cluster_compose, name)
    assert re.fullmatch(r"redis:\d+", _service(cluster_compose, "redis")["image"])
    assert "--save" in _service(cluster_compose, "redis")["command"]
    assert "mongo-data" in cluster_compose["volumes"]


def test_haproxy_config_balances_tcp_to_the_replicas() -> None:
    text = (ROOT / "deploy" / "haproxy.cfg").read_text(encoding="utf-8")
    assert re.search(r"^\s*mode tcp\s*$", text, re.M)
    assert re.search(r"^\s*bind :9998\s*$", text, re.M)
    assert "ktnchat:9998" in text and "check" in text


def test_the_image_installs_the_cluster_web_and_metrics_extras() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "'.[mongo,cluster,web,metrics]'" in text


def test_the_web_port_is_published_and_turned_on(compose: Dict[str, Any]) -> None:
    ports = [_published(p) for p in _service(compose, "ktnchat").get("ports") or []]
    assert ("8080", "8080") in ports
    assert _environment(_service(compose, "ktnchat")).get("KTNCHAT_WEB_PORT") == "8080"


def test_the_package_ships_the_web_client() -> None:
    """The static files are package data, so `pip install .` serves the client."""
    from ktnchat.web.static import load_static_files

    files = load_static_files()
    assert set(files) == {"/index.html", "/app.js", "/style.css"}
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"ktnchat.web" = ["static/*.html", "static/*.js", "static/*.css"]' in text
