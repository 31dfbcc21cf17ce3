"""deploy/: the Kubernetes manifests agree with the CLI, the Grafana dashboard and the
Prometheus rules name only metrics that latcli serve and latcli watch expose (read from a
real ``latcli serve`` over the demo fleet, and from watch's own registry), and the rules pass
``promtool check rules`` and their unit tests (``promtool test rules``)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fault_servers as fs
import httpx
import pytest
import typer
import yaml
from conftest import DemoFleet
from prometheus_client.parser import text_string_to_metric_families

from latcli.cli.app import app, main
from latcli.demo.fleet import free_port
from latcli.engines.watch.metrics import WatchMetrics

pytestmark = pytest.mark.timeout(90)

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "kubernetes"
DASHBOARD = DEPLOY / "grafana" / "latcli-fleet.json"
RULES = DEPLOY / "prometheus" / "latcli-rules.yaml"
RULE_TESTS = DEPLOY / "prometheus" / "latcli-rules.test.yaml"

# ---- the one place for what deploy/ uses before latcli has it -------------------------------
# Each entry fails its test once the thing exists: remove it here (and the PENDING note in
# deploy/kubernetes/README.md and bench-job.yaml) when it does.
PENDING_BENCH_OPTIONS = {"--shards": "sharded bench, issue 14 item 2"}
PENDING_METRICS: dict[str, str] = {}

_METRIC = re.compile(r"\blatcli_[a-z0-9_]+\b")
_SELECTOR = re.compile(r"\b(latcli_[a-z0-9_]+)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_BY = re.compile(r"\bby\s*\(([^)]*)\)")
_OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])\b")


# ---- the CLI's options, from its --help -------------------------------------------------------


def _help_options(command: str, capsys: pytest.CaptureFixture[str]) -> set[str]:
    assert main([command, "--help"]) == 0
    return set(_OPTION.findall(capsys.readouterr().out))


def _parses(command: str, args: list[str]) -> None:
    """The args parse as the real command's (values and all), without running it."""
    click_cmd = typer.main.get_command(app).commands[command]
    click_cmd.make_context(command, list(args), resilient_parsing=False)


def _without(args: list[str], pending: dict[str, str]) -> list[str]:
    """``args`` minus each pending option and its value."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a in pending:
            skip = True
        else:
            out.append(a)
    return out


# ---- Kubernetes ---------------------------------------------------------------------------


def _docs() -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            assert {"apiVersion", "kind", "metadata"} <= set(doc), path
            found[doc["kind"], doc["metadata"]["name"]] = doc
    return found


def _container(job: dict[str, Any]) -> dict[str, Any]:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _bench_job() -> dict[str, Any]:
    return _docs()["Job", "latcli-bench"]


def _option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_manifests_parse_and_name_each_other() -> None:
    docs = _docs()
    assert set(docs) == {
        ("ConfigMap", "latcli-inventory"),
        ("PersistentVolumeClaim", "latcli-reports"),
        ("Job", "latcli-bench"),
        ("Job", "latcli-merge"),
    }
    for name in ("latcli-bench", "latcli-merge"):
        pod = docs["Job", name]["spec"]["template"]["spec"]
        assert pod["restartPolicy"] == "Never"
        claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]
                  if "persistentVolumeClaim" in v}  # fmt: skip
        assert claims == {"latcli-reports"}
    maps = [v["configMap"]["name"] for v in _bench_job()["spec"]["template"]["spec"]["volumes"]
            if "configMap" in v]  # fmt: skip
    assert maps == ["latcli-inventory"]


def test_bench_job_is_an_indexed_job_of_n_shards() -> None:
    job = _bench_job()
    spec, container = job["spec"], _container(job)
    args = [str(a) for a in container["args"]]
    shards = int(_option(args, "--shards"))
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == shards > 1
    assert args[0] == "bench" and "--json" in args
    out = _option(args, "--output")
    assert out == "/reports/shard-$(JOB_COMPLETION_INDEX).json"
    # $(VAR) expands only for variables the container declares
    env = {e["name"]: e for e in container["env"]}
    field = env["JOB_COMPLETION_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert field == "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert out.startswith(mounts["reports"] + "/")
    inventory = Path(env["LATCLI_INVENTORY"]["value"])
    assert str(inventory.parent) == mounts["inventory"]
    data = _docs()["ConfigMap", "latcli-inventory"]["data"]
    assert list(data) == [inventory.name]
    assert yaml.safe_load(data[inventory.name])["agents"]  # a real agents.yaml


def test_bench_job_options_exist_in_latcli_bench(capsys: pytest.CaptureFixture[str]) -> None:
    args = [str(a) for a in _container(_bench_job())["args"]]
    known = _help_options("bench", capsys)
    named = {a for a in args if a.startswith("-")}
    missing = named - known - set(PENDING_BENCH_OPTIONS)
    assert not missing, f"not options of latcli bench: {sorted(missing)}"
    _parses("bench", _without(args[1:], PENDING_BENCH_OPTIONS))


def test_pending_bench_options_are_still_pending(capsys: pytest.CaptureFixture[str]) -> None:
    landed = set(PENDING_BENCH_OPTIONS) & _help_options("bench", capsys)
    assert not landed, (
        f"{sorted(landed)} exist now: remove them from PENDING_BENCH_OPTIONS and the PENDING "
        "notes in deploy/kubernetes/README.md and bench-job.yaml"
    )


def _merge_script() -> list[str]:
    container = _container(_docs()["Job", "latcli-merge"])
    assert container["command"] == ["/bin/sh", "-c"]
    words = shlex.split(container["args"][0])
    assert words[:3] == ["exec", "latcli", "report"]
    return words[3:]


def test_merge_job_reads_every_shard_with_latcli_report(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = _merge_script()
    shard_glob = args[0]
    bench_out = _option([str(a) for a in _container(_bench_job())["args"]], "--output")
    assert shard_glob == bench_out.replace("$(JOB_COMPLETION_INDEX)", "*")
    named = {a for a in args if a.startswith("-")}
    assert not named - _help_options("report", capsys)
    _parses("report", args)


def test_merge_step_merges_real_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The merge Job's command, run on two real bench reports in place of the shards'."""
    with fs.ok_server() as server:
        for i in range(2):
            out = tmp_path / f"shard-{i}.json"
            assert main(["bench", server.url + "/health", "-n", "40", "-c", "2", "--warmup",
                         "0s", "-q", "-o", str(out)]) == 0  # fmt: skip
    capsys.readouterr()
    args = [a.replace("/reports", str(tmp_path)) for a in _merge_script()]
    shards = sorted(str(p) for p in tmp_path.glob(Path(args[0]).name))
    assert main(["report", *shards, *args[1:]]) == 0
    merged = json.loads((tmp_path / "merged.json").read_text())
    assert merged["runs"] == 2 and merged["requests"] == 80
    assert [v["pass"] for v in merged["sla"]] == [True, True]
    assert (tmp_path / "merged.xml").exists() and (tmp_path / "merged.html").exists()


# ---- what serve and watch expose --------------------------------------------------------------


def _sample_names(family_name: str, kind: str) -> set[str]:
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum",
                "_created"), "gauge": ("",)}[kind]  # fmt: skip
    return {family_name + s for s in suffixes}


def _watch_names() -> set[str]:
    """Sample names of watch's registry (WatchMetrics: what --metrics-port serves)."""
    names: set[str] = set()
    for family in WatchMetrics().registry.collect():
        names |= _sample_names(family.name, family.type)
    return names


@pytest.fixture(scope="module")
def served_metrics(
    demo_fleet: DemoFleet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, set[str]]]:
    """A real ``latcli serve`` over the demo fleet plus a dead ``ghost`` type, scraped after
    routed requests and health checks: sample name -> label names."""
    doc = yaml.safe_load(demo_fleet.inventory_path.read_text(encoding="utf-8"))
    doc["agents"].append(
        {"id": "ghost-1", "type": "ghost", "url": f"http://127.0.0.1:{free_port()}"}
    )
    inventory = tmp_path_factory.mktemp("deploy") / "agents.yaml"
    inventory.write_text(yaml.safe_dump(doc), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "latcli", "serve", "-i", str(inventory), "--port", "0",
         "--interval", "0.2s", "--no-state"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        found = re.search(r"latcli serve: (http://\S+) ", proc.stderr.readline())
        assert found, "serve did not start"
        url = found.group(1)
        httpx.post(url + "/route/weather", json={"message": "hi"}, timeout=10)
        httpx.post(url + "/route/ghost", json={"message": "hi"}, timeout=10)
        yield _scrape(url)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _scrape(url: str) -> dict[str, set[str]]:
    deadline = time.monotonic() + 20
    while True:
        text = httpx.get(url + "/metrics", timeout=5).text
        labels: dict[str, set[str]] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels.setdefault(s.name, set()).update(s.labels)
        # Checks are timed as they end; the per-agent gauges once a tick has seen them.
        ticked = {"latcli_health_check_duration_seconds_bucket", "latcli_agent_up"} <= set(labels)
        if ticked or time.monotonic() > deadline:
            return labels
        time.sleep(0.2)


def _exprs_of_dashboard() -> list[str]:
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dash["templating"]["list"] if v["type"] == "query"]
    return exprs


def _exprs_of_rules() -> list[str]:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [str(r["expr"]) for g in doc["groups"] for r in g["rules"]]


def _check_names_and_labels(exprs: list[str], exposed: dict[str, set[str]]) -> None:
    for expr in exprs:
        names = set(_METRIC.findall(expr))
        assert names, expr
        unknown = names - set(exposed) - set(PENDING_METRICS)
        assert not unknown, f"not exposed by latcli serve or watch: {sorted(unknown)} in {expr}"
        for name, body in _SELECTOR.findall(expr):
            if name in exposed:
                bad = set(_MATCHER.findall(body)) - exposed[name]
                assert not bad, f"{name} has no label {sorted(bad)}: {expr}"
        present = [exposed[n] for n in names if n in exposed]
        for group in _BY.findall(expr):
            for label in (g.strip() for g in group.split(",")):
                if label in ("le", "instance", "job"):  # histogram buckets, scrape target
                    continue
                assert any(label in ls for ls in present), f"no metric has {label!r}: {expr}"


def test_dashboard_uses_only_exposed_metrics(served_metrics: dict[str, set[str]]) -> None:
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dash["uid"] and len({p["id"] for p in dash["panels"]}) == len(dash["panels"])
    _check_names_and_labels(_exprs_of_dashboard(), served_metrics)


def test_rules_use_only_exposed_metrics(served_metrics: dict[str, set[str]]) -> None:
    _check_names_and_labels(_exprs_of_rules(), served_metrics)


def test_fleet_metrics_are_watchs_too() -> None:
    """Every agent-level metric the dashboard and rules use is served by `latcli watch
    --metrics-port` as well (watch's registry), not only by serve."""
    used = {n for e in _exprs_of_dashboard() + _exprs_of_rules() for n in _METRIC.findall(e)}
    agent_level = {n for n in used if not n.startswith("latcli_gateway_")}
    assert agent_level and agent_level <= _watch_names()


def test_pending_metrics_are_still_pending(served_metrics: dict[str, set[str]]) -> None:
    landed = set(PENDING_METRICS) & set(served_metrics)
    assert not landed, f"{sorted(landed)} exist now: remove them from PENDING_METRICS"


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: apt-get install prometheus")
        pytest.skip("promtool not installed (Debian: apt-get install prometheus)")
    return found


@pytest.mark.parametrize(("verb", "path"), [("check", RULES), ("test", RULE_TESTS)])
def test_promtool_accepts_the_rules(verb: str, path: Path) -> None:
    proc = subprocess.run(
        [_promtool(), verb, "rules", path.name],
        cwd=path.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
