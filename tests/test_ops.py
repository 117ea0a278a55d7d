"""What operators and the platform rely on outside the code: ops/prometheus/alerts.yml (promtool
checks it and runs its unit tests), ops/grafana/trt.json (importable, every panel on a data source),
the metric names both read (each one exposed by a running instance's /metrics), ops/RUNBOOK.md (a
section for every alert, where its runbook_url points) and render.yaml (the fields Render needs,
only variables config.py reads, the database it names)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml

import config
from tests.procs import FAKE_TOKEN, ROOT, free_port

ALERTS = ROOT / "ops" / "prometheus" / "alerts.yml"
ALERTS_TEST = ROOT / "ops" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "ops" / "grafana" / "trt.json"
RUNBOOK = ROOT / "ops" / "RUNBOOK.md"
RENDER = ROOT / "render.yaml"

# Grafana's variables, given values PromQL can parse
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$instance": ".*"}


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (apt-get install prometheus; .ci/run installs it when it can)")
    return path


def _alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        if panel.get("type") == "row":
            out.extend(panel.get("panels", []))  # a collapsed row keeps its panels inside
        else:
            out.append(panel)
    return out


def _dashboard_exprs() -> list[str]:
    exprs = [target["expr"] for panel in _panels(_dashboard()) for target in panel.get("targets", [])]
    for variable in _dashboard()["templating"]["list"]:
        definition = variable.get("definition", "")
        match = re.fullmatch(r"label_values\((\w+),\s*\w+\)", definition)
        if match:
            exprs.append(match.group(1))
    return exprs


def _grafana_free(expr: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


# -- metric names in PromQL ---------------------------------------------------------------------

KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
            "inf", "nan", "atan2"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_CLAUSES = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENT = re.compile(r"(?<![\w$.:])([A-Za-z_:][\w:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers that are not functions or
    aggregations (followed by "("), keywords, label names (inside {...} or by/on/... lists),
    strings, durations, numbers or Grafana variables."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _CLAUSES.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in KEYWORDS:
            continue
        names.add(name)
    return names


def exposed_names(exposition: str) -> set[str]:
    """Every name a /metrics text answers to: HELP and TYPE names (so a labelled metric with no
    children yet counts) with a histogram's and summary's series, and every sample's name."""
    names: set[str] = set()
    for line in exposition.splitlines():
        if line.startswith(("# HELP ", "# TYPE ")):
            parts = line.split()
            names.add(parts[2])
            if line.startswith("# TYPE ") and len(parts) > 3 and parts[3] in ("histogram", "summary"):
                suffixes = ("_bucket", "_count", "_sum") if parts[3] == "histogram" else ("_count", "_sum")
                names.update(parts[2] + suffix for suffix in suffixes)
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names


def test_the_name_extractor_finds_metrics_and_skips_functions_labels_keywords_and_variables() -> None:
    expr = ('histogram_quantile(0.99, sum by (le, kind) (rate(trt_update_handling_seconds_bucket'
            '{instance=~"$instance", kind!="message"}[$__rate_interval])))'
            ' / ignoring (kind) group_left sum without (state) (trt_jobs offset 5m) > bool 1e3'
            ' and on (job, instance) trt_role_active == 1 unless absent(trt_build_info)')
    assert metric_names(expr) == {"trt_update_handling_seconds_bucket", "trt_jobs", "trt_role_active",
                                  "trt_build_info"}
    assert metric_names('sum(rate(trt_kie_calls_total{outcome=~"ok|trt_not_a_metric"}[5m]))') == {
        "trt_kie_calls_total"}


def test_a_misspelt_metric_name_is_caught_against_an_exposition() -> None:
    exposition = ("# HELP trt_updates_handled_total Updates the dispatcher finished\n"
                  "# TYPE trt_updates_handled_total counter\n"
                  "# HELP trt_kie_seconds Duration of KIE calls\n"
                  "# TYPE trt_kie_seconds histogram\n")
    exposed = exposed_names(exposition)
    assert {"trt_updates_handled_total", "trt_kie_seconds_bucket", "trt_kie_seconds_count"} <= exposed
    used = metric_names("sum by (kind) (rate(trt_updates_handeld_total[5m]))")
    assert used - exposed == {"trt_updates_handeld_total"}
    assert metric_names("rate(trt_updates_handled[5m])") - exposed == {"trt_updates_handled"}, \
        "a counter is exposed with _total only"


async def test_every_metric_the_dashboard_and_the_rules_read_is_exposed_by_a_running_instance(
        database_url: str, spawn: Any) -> None:
    from fakes.telegram_api import FakeTelegram

    used: dict[str, set[str]] = {}
    for rule in _alert_rules():
        for name in metric_names(rule["expr"]):
            used.setdefault(name, set()).add(f"alert {rule['alert']}")
    for expr in _dashboard_exprs():
        for name in metric_names(expr):
            used.setdefault(name, set()).add("dashboard")
    assert len(used) > 30, f"the extractor found suspiciously few names: {sorted(used)}"

    async with FakeTelegram() as telegram:
        port = free_port()
        trt = spawn({"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "DATABASE_URL": database_url, "PORT": str(port),
                     "TELEGRAM_API_BASE": telegram.base_url, "BOT_MODE": "webhook",
                     "WEBHOOK_BASE_URL": f"http://127.0.0.1:{port}", "WEBHOOK_SECRET": "ops-secret-0123456789"})
        await trt.wait_healthy(status="pass")
        status, text = await trt.get("/metrics")
    assert status == 200
    exposed = exposed_names(text)
    missing = {name: sorted(where) for name, where in used.items() if name not in exposed}
    assert not missing, f"read by the dashboard or the rules but not in /metrics: {missing}"


# -- the alert rules ----------------------------------------------------------------------------


def test_the_alert_rules_pass_promtool_check_rules() -> None:
    done = subprocess.run([_promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_alert_rules_pass_their_promtool_unit_tests() -> None:
    done = subprocess.run([_promtool(), "test", "rules", str(ALERTS_TEST)], capture_output=True, text=True,
                          timeout=60, cwd=ALERTS_TEST.parent)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_wait_a_severity_words_for_humans_and_a_runbook_link() -> None:
    rules = _alert_rules()
    assert len(rules) >= 20
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "alert names are unique"
    for rule in rules:
        where = rule["alert"]
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), f"{where}: for: is missing"
        assert rule.get("labels", {}).get("severity") in ("critical", "warning", "info"), where
        annotations = rule.get("annotations", {})
        assert annotations.get("summary") and annotations.get("description"), where
        assert re.fullmatch(r"ops/RUNBOOK\.md#[a-z0-9-]+", annotations.get("runbook_url", "")), where


def test_the_key_alerts_are_there() -> None:
    names = {rule["alert"] for rule in _alert_rules()}
    assert {"TrtNoActiveInstance", "TrtTwoActiveInstances", "TrtInboxOldestPendingHigh", "TrtActorRestartStorm",
            "TrtSupervisorEscalation", "TrtEventLoopLag", "TrtWebhookIntakeErrors", "TrtWebhookVerifyFailing",
            "TrtKieFailureRatio", "TrtKieCreditsLow", "TrtGenerationsPaused", "TrtJobsStuck"} <= names
    tested = set(re.findall(r"alertname: (\w+)", ALERTS_TEST.read_text()))
    assert {"TrtNoActiveInstance", "TrtTwoActiveInstances", "TrtInboxOldestPendingHigh", "TrtActorRestartStorm",
            "TrtGenerationsPaused", "TrtKieCreditsLow", "TrtJobsStuck", "TrtKieFailureRatio"} <= tested


# -- the runbook --------------------------------------------------------------------------------


def github_anchor(heading: str) -> str:
    """The id GitHub gives a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _runbook_anchors() -> dict[str, str]:
    anchors = {}
    for line in RUNBOOK.read_text().splitlines():
        match = re.match(r"#{1,6}\s+(.*)", line)
        if match:
            anchors[github_anchor(match.group(1))] = match.group(1)
        anchors.update((a, a) for a in re.findall(r'<a (?:id|name)="([^"]+)"', line))
    return anchors


def test_github_anchors_are_made_the_way_github_makes_them() -> None:
    assert github_anchor("TrtNoActiveInstance") == "trtnoactiveinstance"
    assert github_anchor("No reply to /start") == "no-reply-to-start"
    assert github_anchor("A user says: charged twice!") == "a-user-says-charged-twice"


def test_every_alert_has_a_runbook_section_where_its_link_points() -> None:
    anchors = _runbook_anchors()
    for rule in _alert_rules():
        anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
        assert anchor in anchors, f"{rule['alert']}: ops/RUNBOOK.md has no section #{anchor}"
        assert rule["alert"] in anchors[anchor], f"{rule['alert']}: #{anchor} is the section of another alert"


def test_the_runbooks_log_events_and_fields_are_words_the_program_uses() -> None:
    """Every `snake_case` word the runbook quotes (log events, /health fields, labels) is written
    by the program (its code or its SQL), is a KIE error kind, or is a metric name."""
    from kie import errors
    from tests.test_architecture import program_files

    source = "\n".join(path.read_text() for path in program_files())
    source += "\n".join(path.read_text() for path in (ROOT / "sql").glob("*.sql"))
    kinds = {cls("").kind for cls in vars(errors).values()
             if isinstance(cls, type) and issubclass(cls, errors.KieError)}
    quoted = set(re.findall(r"`([a-z][a-z0-9]*(?:_[a-z0-9]+)+)`", RUNBOOK.read_text()))
    assert {"update_failed", "lock_held_by_another_instance", "generations_paused"} <= quoted
    unknown = sorted(word for word in quoted - kinds
                     if not word.startswith(("trt_", "process_")) and not re.search(rf"\b{word}\b", source))
    assert not unknown, f"the program never writes these: {unknown}"


def test_the_runbook_names_dashboard_panels_that_exist() -> None:
    titles = {panel["title"] for panel in _panels(_dashboard())}
    named = {" ".join(title.split())  # a title may wrap onto the next line of the Markdown
             for title in re.findall(r"panel\s+\*\*([^*]+)\*\*", RUNBOOK.read_text())}
    assert named, "the runbook points at panels as: panel **Title**"
    assert named <= titles, f"no such panel in ops/grafana/trt.json: {sorted(named - titles)}"


# -- the dashboard ------------------------------------------------------------------------------


def test_the_dashboard_is_importable_with_a_prometheus_source_and_an_instance_variable() -> None:
    dashboard = _dashboard()
    assert dashboard["schemaVersion"] >= 36 and dashboard["title"] and dashboard["uid"]
    assert {"name": "DS_PROMETHEUS", "type": "datasource", "pluginId": "prometheus"}.items() <= \
        dashboard["__inputs"][0].items()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["instance"]["type"] == "query" and "trt_build_info" in variables["instance"]["definition"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"


def test_every_panel_has_a_data_source_and_queries() -> None:
    panels = _panels(_dashboard())
    assert len(panels) >= 30
    titles = [panel["title"] for panel in panels]
    assert len(titles) == len(set(titles)), "the runbook names panels by title: titles are unique"
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip() and target["refId"], panel["title"]
            assert target.get("datasource", panel["datasource"]) == panel["datasource"], panel["title"]
            assert 'instance=~"$instance"' in target["expr"], f"{panel['title']}: not filtered by $instance"


def test_the_dashboards_queries_parse_as_promql(tmp_path: Path) -> None:
    promtool = _promtool()
    rules = [{"record": f"dashboard:query_{i}", "expr": _grafana_free(expr)}
             for i, expr in enumerate(_dashboard_exprs())]
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


# -- render.yaml --------------------------------------------------------------------------------

# read by Render itself, not by the program
PLATFORM_VARIABLES = {"PYTHON_VERSION"}
SECRETS = {"TELEGRAM_BOT_TOKEN", "KIE_API_KEY", "WEBHOOK_SECRET", "KIE_WEBHOOK_HMAC_KEY", "CHAOS_TOKEN"}


def config_variables() -> set[str]:
    """Every environment variable config.py reads: the setting(...) fields of Settings and the
    variables load() reads itself (the token, the base URL and RENDER_EXTERNAL_URL, ...)."""
    declared = {spec.metadata["variable"].name for spec in fields(config.Settings) if "variable" in spec.metadata}
    source = Path(config.__file__).read_text()
    return declared | set(re.findall(r'env\.get\("([A-Z][A-Z0-9_]*)"', source))


def _render() -> dict[str, Any]:
    return yaml.safe_load(RENDER.read_text())


def _web(blueprint: dict[str, Any]) -> dict[str, Any]:
    webs = [s for s in blueprint["services"] if s.get("type") == "web"]
    assert len(webs) == 1, "one web service"
    return webs[0]


def test_config_variables_are_found_where_config_declares_them() -> None:
    known = config_variables()
    assert {"TELEGRAM_BOT_TOKEN", "DATABASE_URL", "WEBHOOK_BASE_URL", "RENDER_EXTERNAL_URL", "PORT",
            "WEBHOOK_SECRET", "KIE_API_KEY", "ADMIN_IDS", "INSTANCE_ID"} <= known
    assert "PYTHON_VERSION" not in known and "USE_PTB" not in known


def test_the_render_blueprint_has_what_render_needs() -> None:
    blueprint = _render()
    web = _web(blueprint)
    for key in ("name", "runtime", "buildCommand", "startCommand", "healthCheckPath", "envVars"):
        assert web.get(key), f"services[].{key} is missing"
    assert web["runtime"] == "python"
    assert "pip install ." in web["buildCommand"]
    assert web["startCommand"].split()[-2:] == ["run.py", "serve"]
    assert web["healthCheckPath"] == "/health"
    databases = {db["name"]: db for db in blueprint.get("databases", [])}
    assert databases, "a databases: entry (Render PostgreSQL)"
    for db in databases.values():
        assert db.get("plan") and str(db.get("postgresMajorVersion", "16")).isdigit()
    sources = {"value", "sync", "fromDatabase", "generateValue"}
    keys = []
    for entry in web["envVars"]:
        keys.append(entry["key"])
        given = sources & entry.keys()
        assert len(given) == 1, f"{entry['key']}: exactly one of {sorted(sources)}"
        if "sync" in entry:
            assert entry["sync"] is False, entry["key"]
        if "fromDatabase" in entry:
            assert entry["fromDatabase"]["name"] in databases, f"{entry['key']}: no such database"
            assert entry["fromDatabase"]["property"] == "connectionString", entry["key"]
    assert len(keys) == len(set(keys)), "each variable once"
    unknown = set(keys) - config_variables() - PLATFORM_VARIABLES
    assert not unknown, f"config.py reads no such variable: {sorted(unknown)}"
    entries = {entry["key"]: entry for entry in web["envVars"]}
    assert "fromDatabase" in entries["DATABASE_URL"], "DATABASE_URL from Render's PostgreSQL: never the embedded one"
    assert "PORT" not in entries, "Render sets PORT (10000, the program's default too)"
    for key in SECRETS & entries.keys():
        assert entries[key].get("sync") is False, f"{key} is a secret: set in Render's dashboard, never committed"
    assert re.fullmatch(r"3\.(1[1-9])\.\d+", str(entries["PYTHON_VERSION"]["value"])), "a fully qualified 3.11+"
    assert web.get("region") == databases[entries["DATABASE_URL"]["fromDatabase"]["name"]].get(
        "region"), "the service and its database in one region (the internal connection string)"


def test_the_settings_render_gives_make_a_webhook_service_on_its_database() -> None:
    """config.load() over what Render would set: the blueprint's values, something for each
    secret, the database's URL, and Render's own PORT and RENDER_EXTERNAL_URL."""
    web = _web(_render())
    env = {"PORT": "10000", "RENDER_EXTERNAL_URL": "https://trt-bot.onrender.com",
           "RENDER": "true", "RENDER_SERVICE_NAME": web["name"]}
    placeholders = {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN, "WEBHOOK_SECRET": "render-secret-0123456789",
                    "ADMIN_IDS": "1,2"}
    for entry in web["envVars"]:
        if "value" in entry:
            env[entry["key"]] = str(entry["value"])
        elif "fromDatabase" in entry:
            env[entry["key"]] = "postgresql://trt:password@dpg-abc123-a/trt"
        else:
            env[entry["key"]] = placeholders.get(entry["key"], "set-in-the-dashboard")
    settings = config.load("serve", env)
    assert settings.bot_mode == "webhook"
    assert settings.webhook_url == "https://trt-bot.onrender.com/webhook"
    assert settings.port == 10000
    assert settings.database_url == "postgresql://trt:password@dpg-abc123-a/trt"
