"""deploy/'s Prometheus kit: promtool checks the alerting rules and unit-tests each alert's
threshold; the Grafana dashboard is an importable Grafana 10 document; and every metric and
label that either names is one that a real /metrics endpoint serves over a history the monitor
made on the loopback lab."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML comes with apprise; its stubs do not

from blmonitor import cli
from blmonitor.config import load_config
from blmonitor.monitor.metrics import serve_metrics, store_renderer
from tests import httpservers
from tests.test_daemon import Clock, outlook_s3150_bounce, run, write_config
from tests.test_snds import DAILY as SNDS_DAILY
from tests.test_snds import KEY as SNDS_KEY
from tests.test_snds import STATUS as SNDS_STATUS
from tests.test_snds import read as snds_file

ROOT = Path(__file__).parent.parent
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus-alerts.yml"
DASHBOARD = DEPLOY / "grafana-dashboard.json"
STALE_SECONDS = 3 * 900  # 3 x the default 15m interval, as the rules file documents


def find_promtool() -> str | None:
    """$BLMONITOR_PROMTOOL, promtool on PATH, or the one scripts/check --setup unpacks."""
    unpacked = ROOT / ".tools/prometheus/usr/bin/promtool"
    named = os.environ.get("BLMONITOR_PROMTOOL") or shutil.which("promtool")
    return named or (str(unpacked) if os.access(unpacked, os.X_OK) else None)


PROMTOOL = find_promtool()
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not found: scripts/check --setup unpacks Debian's prometheus package "
    "into .tools/ (or set BLMONITOR_PROMTOOL)",
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, timeout=60, check=False
    )


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text("utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text("utf-8"))
    return data


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable of the dashboard."""
    found = [
        (f"panel {panel['id']} {target['refId']}", target["expr"])
        for panel in dashboard()["panels"]
        for target in panel["targets"]
    ]
    for variable in dashboard()["templating"]["list"]:
        query = variable["query"]["query"]
        inner = re.fullmatch(r"label_values\((.+), *([a-zA-Z_]\w*)\)", query)
        assert inner, query
        found.append((f"variable {variable['name']}", inner[1]))
    return found


def as_promql(grafana: str) -> str:
    """A dashboard query with Grafana's variables given values, as Prometheus would get it."""
    return grafana.replace("$__range", "1d").replace("$instance", ".*").replace("$target", ".*")


def every_query() -> list[tuple[str, str]]:
    return [(rule["alert"], rule["expr"]) for rule in rules()] + dashboard_queries()


# --- names: what the kit asks for exists --------------------------------------------------------

METRIC_RE = re.compile(r"\bblmonitor_[a-zA-Z0-9_]+")
# label names in matchers, grouping clauses, legends and alert templates
MATCHER_RE = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)\s*\"")
CLAUSE_RE = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
TEMPLATE_RE = re.compile(r"\{\{\s*(?:\$labels\.)?([a-zA-Z_]\w*)\s*\}\}")
TARGET_LABELS = {"instance", "job"}  # added by Prometheus to every scraped sample


def label_names(text: str) -> set[str]:
    names = set(MATCHER_RE.findall(text)) | set(TEMPLATE_RE.findall(text))
    for clause in CLAUSE_RE.findall(text):
        names |= {name.strip() for name in clause.split(",") if name.strip()}
    return names


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('max by (target, zone) (blmonitor_listed{instance=~"$instance"})',
         {"target", "zone", "instance"}),
        ('a and on (target) b{health!="ok"} == 1', {"target", "health"}),
        ("{{ $labels.list }} per {{zone}}", {"list", "zone"}),
        ("sum(blmonitor_up) or vector(0)", set()),
    ],
)  # fmt: skip
def test_label_names_are_found(text, names) -> None:
    assert label_names(text) == names


@pytest.fixture
def scraped(lab, tmp_path) -> dict[str, set[str]]:
    """Metric family → label names, from a real /metrics over a lab history: a listing, a bounce
    listing, a dead zone and an undeliverable notification, so every labelled family has samples.
    (Function-scoped: the resolver and queue guards of conftest are function-scoped too.)"""
    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new" / "1.eml").write_bytes(outlook_s3150_bounce("kit1@example.net"))
    config = write_config(tmp_path, lab, "http://127.0.0.1:9", confirm=1, zones=("flip", "dead"),
                          min_answered=0.3)  # fmt: skip  # nothing listens on port 9
    key_file = tmp_path / "snds.key"
    key_file.write_text(SNDS_KEY + "\n")
    key_file.chmod(0o600)
    # SNDS (our server on 127.0.0.1) blocks the target and rates it RED: the sources' families
    snds = {SNDS_STATUS: (200, snds_file("ipstatus-blocked.csv")),
            SNDS_DAILY: (200, snds_file("data-red.csv"))}  # fmt: skip
    clock = Clock()
    lab.flip.listed = {"203.0.113.5"}
    try:
        with httpservers.serve(snds, []) as base:
            with config.open("a") as extra:
                extra.write(f'[bounces]\nwatch = ["{maildir}"]\n'
                            f'[snds]\nkey_file = "{key_file}"\nbase_url = "{base}/snds/"\n')  # fmt: skip
            run(config, clock)
            run(config, clock)
    finally:
        lab.flip.listed = set()
    database = load_config(config).monitor.database
    with (
        serve_metrics("127.0.0.1", 0, store_renderer(database)) as server,
        httpx.Client(trust_env=False, timeout=5) as http,
    ):
        reply = http.get(server.url)
    assert reply.status_code == 200
    families: dict[str, set[str]] = {}
    for line in reply.text.splitlines():
        if line.startswith("# TYPE "):
            families[line.split()[2]] = set()
        elif line and not line.startswith("#"):
            name, _, labels = line.partition("{")
            families[name.split(" ")[0]] |= set(re.findall(r'([a-zA-Z_]\w*)="', labels))
    assert families["blmonitor_listed"] == {"target", "zone"}
    assert families["blmonitor_bounce_listed"] == {"target", "list"}
    assert families["blmonitor_zone_usable"] == {"zone", "health"}
    assert 'blmonitor_zone_usable{zone="dead.lab.test",health="dead"} 0' in reply.text
    assert families["blmonitor_source_listed"] == {"source", "target", "list"}
    assert families["blmonitor_source_up"] == {"source"}
    assert families["blmonitor_reputation"] == {"source", "subject"}
    assert "blmonitor_notifications_pending 0" not in reply.text
    return families


def test_every_metric_and_label_the_kit_names_is_exported(scraped) -> None:
    wrong = []
    for where, query in every_query():
        names = set(METRIC_RE.findall(query))
        if not names and not query.startswith("up{"):
            wrong.append(f"{where} names no blmonitor metric: {query}")
        if names - set(scraped):
            wrong.append(f"{where}: {sorted(names - set(scraped))} not in /metrics")
        known = TARGET_LABELS.union(*(scraped.get(name, set()) for name in names))
        if label_names(query) - known:
            wrong.append(f"{where}: labels {sorted(label_names(query) - known)} not on {names}")
    known = TARGET_LABELS.union(*scraped.values())
    legends = [t.get("legendFormat", "") for p in dashboard()["panels"] for t in p["targets"]]
    annotations = [text for rule in rules() for text in rule["annotations"].values()]
    wrong += [f"unknown label in {text!r}" for text in legends + annotations
              if label_names(text) - known]  # fmt: skip
    assert wrong == []
    assert len(every_query()) > 25  # the rules and the dashboard were read


def test_the_dashboard_shows_every_metric_the_rules_alert_on() -> None:
    shown = {name for _, query in dashboard_queries() for name in METRIC_RE.findall(query)}
    alerted = {name for rule in rules() for name in METRIC_RE.findall(rule["expr"])}
    assert alerted <= shown


# --- the rules: promtool, and one unit test per alert -------------------------------------------


@needs_promtool
def test_promtool_checks_the_rules() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules())} rules found" in checked.stdout


@needs_promtool
def test_promtool_parses_every_dashboard_query(tmp_path) -> None:
    """The dashboard's PromQL, as recording rules, through the same parser as the alerts."""
    recorded = [{"record": f"kit:query_{n}", "expr": as_promql(q)}
                for n, (_, q) in enumerate(dashboard_queries())]  # fmt: skip
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": recorded}]}))
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_alert_says_what_to_do() -> None:
    commands = 0
    for rule in rules():
        assert set(rule["annotations"]) == {"summary", "description"}, rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        said = re.findall(
            r"`(blmonitor [^`]+)`", " ".join(rule["annotations"]["description"].split())
        )
        assert said, f"{rule['alert']} names no blmonitor command"
        for command in said:
            assert_blmonitor_command(command)
            commands += 1
    assert commands >= len(rules())


def assert_blmonitor_command(text: str) -> None:
    """`blmonitor GROUP… COMMAND --option…` names a real command and real options."""
    command: click.Command = cli.main
    words = shlex.split(text)[1:]
    while words and isinstance(command, click.Group) and not words[0].startswith("-"):
        found = command.get_command(click.Context(command), words.pop(0))
        assert found is not None, text
        command = found
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    assert {w for w in words if w.startswith("-")} <= options, text


def test_the_stale_threshold_is_the_documented_one() -> None:
    [stale] = [rule for rule in rules() if rule["alert"] == "BlmonitorStale"]
    assert stale["expr"] == f"blmonitor_last_run_age_seconds > 3 * {STALE_SECONDS // 3}"
    assert "3 * 900" in RULES.read_text("utf-8").split("groups:")[0]
    assert "3 * 900" in (DEPLOY / "README.md").read_text("utf-8")


@dataclass(frozen=True)
class Case:
    """An alert's unit test: the alert fires at step `fires` of `series` (values `step`
    apart), with these labels and this summary, and not one step before."""

    alert: str
    series: list[tuple[str, str]]
    fires: int
    labels: dict[str, str]
    summary: str
    step: str = "1m"  # a week evaluated every minute takes seconds: long waits go by the hour

    def as_promtool_test(self) -> dict[str, Any]:
        [rule] = [r for r in rules() if r["alert"] == self.alert]
        expected = {"instance": "mx:9469", "job": "blmonitor", **self.labels, **rule["labels"]}
        count, unit = int(self.step[:-1]), self.step[-1]
        firing = {"exp_labels": expected, "exp_annotations": {"summary": self.summary}}
        return {
            "interval": self.step,
            "input_series": [{"series": s, "values": v} for s, v in self.series],
            "alert_rule_test": [
                {"eval_time": f"{(self.fires - 1) * count}{unit}", "alertname": self.alert,
                 "exp_alerts": []},
                {"eval_time": f"{self.fires * count}{unit}", "alertname": self.alert,
                 "exp_alerts": [firing]},
            ],
        }  # fmt: skip


SERIES_LABELS = 'instance="mx:9469", job="blmonitor"'
ALERT_CASES = [
    Case("BlmonitorListed",
     [(f'blmonitor_listed{{{SERIES_LABELS}, target="203.0.113.5", zone="bl.example"}}', "0 1x20"),
      (f'blmonitor_listed{{{SERIES_LABELS}, target="203.0.113.6", zone="bl.example"}}', "0x20")],
     6, {"target": "203.0.113.5", "zone": "bl.example"}, "203.0.113.5 is listed on bl.example"),
    Case("BlmonitorListedFromBounces",
     [(f'blmonitor_bounce_listed{{{SERIES_LABELS}, target="203.0.113.5", list="microsoft-s3150"}}',
       "1x20")],
     5, {"target": "203.0.113.5", "list": "microsoft-s3150"},
     "Returned mail says 203.0.113.5 is blocked by microsoft-s3150"),
    Case("BlmonitorReceiverBlocks",
     [(f'blmonitor_source_listed{{{SERIES_LABELS}, source="SNDS", target="203.0.113.5", '
       'list="microsoft-snds"}', "1x20")],
     5, {"source": "SNDS", "target": "203.0.113.5", "list": "microsoft-snds"},
     "SNDS says mail from 203.0.113.5 is blocked (microsoft-snds)"),
    Case("BlmonitorReputationPoor",
     [(f'blmonitor_reputation{{{SERIES_LABELS}, source="Gmail Postmaster", '
       'subject="203.0.113.5"}', "1 2x20"),
      (f'blmonitor_reputation{{{SERIES_LABELS}, source="SNDS", subject="203.0.113.6"}}', "1x20")],
     6, {"source": "Gmail Postmaster", "subject": "203.0.113.5"},
     "Gmail Postmaster rates 203.0.113.5 poor or bad"),
    Case("BlmonitorReceiverDataUnreadable",
     [(f'blmonitor_source_up{{{SERIES_LABELS}, source="SNDS"}}', "0x30"),
      (f'blmonitor_source_up{{{SERIES_LABELS}, source="Gmail Postmaster"}}', "1x30")],
     24, {"source": "SNDS"}, "SNDS could not be read for a day", "1h"),
    Case("BlmonitorBlind",
     [(f"blmonitor_checks_failing_runs{{{SERIES_LABELS}}}", "0 1 2 3x40"),
      (f"blmonitor_last_run_failed{{{SERIES_LABELS}}}", "0 1x42")],
     31, {}, "blmonitor on mx:9469 is blind: its runs see nothing"),
    Case("BlmonitorStale",
     [(f"blmonitor_last_run_age_seconds{{{SERIES_LABELS}}}", "0+60x60")],
     STALE_SECONDS // 60 + 1 + 5, {},
     "blmonitor on mx:9469 has not finished a run for 51m 0s"),
    Case("BlmonitorZoneUnusable",
     [(f'blmonitor_zone_usable{{{SERIES_LABELS}, zone="dead.example", health="dead"}}', "0x30"),
      (f'blmonitor_zone_usable{{{SERIES_LABELS}, zone="bl.example", health="ok"}}', "1x30")],
     24, {"zone": "dead.example", "health": "dead"},
     "dead.example has been unusable for a day (dead)", "1h"),
    Case("BlmonitorSmartHostForAWeek",
     [(f"blmonitor_smarthost_routed{{{SERIES_LABELS}}}", "0 1x200")],
     7 * 24 + 1, {}, "Mail from mx:9469 has gone through the smart host for a week", "1h"),
    Case("BlmonitorNotificationsPending",
     [(f"blmonitor_notifications_pending{{{SERIES_LABELS}}}", "0 2x80")],
     61, {}, "2 blmonitor notifications undelivered for an hour"),
    Case("BlmonitorExporterDown",
     [(f"up{{{SERIES_LABELS}}}", "0x10"), ('up{instance="other:9100", job="node"}', "0x10")],
     5, {}, "Prometheus cannot scrape blmonitor on mx:9469"),
    Case("BlmonitorHistoryUnreadable",
     [(f"blmonitor_up{{{SERIES_LABELS}}}", "1 0x10")],
     6, {}, "blmonitor on mx:9469 cannot read its history database"),
]  # fmt: skip


def test_every_alert_has_a_unit_test() -> None:
    assert [case.alert for case in ALERT_CASES] == [rule["alert"] for rule in rules()]


def promtool_test(
    tmp_path: Path, document: dict[str, Any], tests: list[dict[str, Any]], *, step: str = "1m"
) -> str:
    """`promtool test rules` of `tests` over the rules `document`, evaluated every `step`:
    "" or what promtool said."""
    (tmp_path / "rules.yml").write_text(json.dumps(document))
    suite = {"rule_files": ["rules.yml"], "evaluation_interval": step, "tests": tests}
    (tmp_path / "tests.yml").write_text(json.dumps(suite))
    tested = promtool("test", "rules", str(tmp_path / "tests.yml"))
    assert ("SUCCESS" in tested.stdout) == (tested.returncode == 0)
    return "" if tested.returncode == 0 else tested.stdout + tested.stderr


def alert_rules(*, without_for: str = "") -> dict[str, Any]:
    """The rules with only their summaries (descriptions are prose), and no `for:` on the alert
    `without_for`."""
    document: dict[str, Any] = yaml.safe_load(RULES.read_text("utf-8"))
    for group in document["groups"]:
        for rule in group["rules"]:
            rule["annotations"] = {"summary": rule["annotations"]["summary"]}
            if rule["alert"] == without_for:
                del rule["for"]
    return document


@needs_promtool
def test_promtool_fires_each_alert_at_its_threshold_and_not_before(tmp_path) -> None:
    for step in ("1m", "1h"):
        cases = [case.as_promtool_test() for case in ALERT_CASES if case.step == step]
        (tmp_path / step).mkdir()
        assert promtool_test(tmp_path / step, alert_rules(), cases, step=step) == ""


@needs_promtool
@pytest.mark.parametrize("case", ALERT_CASES, ids=[case.alert for case in ALERT_CASES])
def test_each_unit_test_fails_without_its_wait(tmp_path, case: Case) -> None:
    """The unit tests can fail: without its `for:` an alert fires before its time."""
    rules_document = alert_rules(without_for=case.alert)
    failed = promtool_test(tmp_path, rules_document, [case.as_promtool_test()], step=case.step)
    assert f"alertname: {case.alert}" in failed


def panel_query(title: str) -> str:
    [panel] = [p for p in dashboard()["panels"] if p["title"] == title]
    return as_promql(panel["targets"][0]["expr"])


@needs_promtool
def test_promtool_evaluates_the_dashboards_composite_queries(tmp_path) -> None:
    """Over made-up series: a pair listed then delisted, one never listed, a bounce listing.
    "Listed now" adds DNS and bounce listings; the timeline keeps only the pairs listed at some
    time in the range, at their value now."""
    listed = f"blmonitor_listed{{{SERIES_LABELS}"
    series = [
        {"series": f'{listed}, target="203.0.113.5", zone="bl.example"}}', "values": "0 1 1 0 0"},
        {"series": f'{listed}, target="203.0.113.6", zone="bl.example"}}', "values": "0x4"},
        {"series": f'blmonitor_bounce_listed{{{SERIES_LABELS}, target="203.0.113.6", '
                   'list="microsoft-s3150"}', "values": "1x4"},
    ]  # fmt: skip
    pair = {"labels": '{target="203.0.113.5", zone="bl.example"}'}
    cases = [
        (panel_query("Listed now"), "0m", [{"labels": "{}", "value": 1}]),
        (panel_query("Listed now"), "1m", [{"labels": "{}", "value": 2}]),
        (panel_query("Listed now"), "3m", [{"labels": "{}", "value": 1}]),
        (panel_query("Listings per target and zone"), "0m", []),  # not listed yet
        (panel_query("Listings per target and zone"), "1m", [{**pair, "value": 1}]),
        (panel_query("Listings per target and zone"), "4m", [{**pair, "value": 0}]),
    ]
    tests = [{"interval": "1m", "input_series": series,
              "promql_expr_test": [{"expr": expr, "eval_time": at, "exp_samples": samples}
                                   for expr, at, samples in cases]}]  # fmt: skip
    assert promtool_test(tmp_path, {"groups": []}, tests) == ""


# --- the dashboard: an importable Grafana 10 document -------------------------------------------

DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
PANEL_TYPES = {"stat", "table", "timeseries", "state-timeline"}  # Grafana's own, no plugin


def test_the_dashboard_is_a_grafana_import_with_a_prometheus_input() -> None:
    board = dashboard()
    assert board["__inputs"] == [
        {"name": "DS_PROMETHEUS", "label": "Prometheus",
         "description": "The Prometheus that scrapes blmonitor run --metrics",
         "type": "datasource", "pluginId": "prometheus", "pluginName": "Prometheus"},
    ]  # fmt: skip
    grafana = [r for r in board["__requires"] if r["type"] == "grafana"]
    assert grafana == [{"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"}]
    assert board["schemaVersion"] >= 36 and board["id"] is None and board["uid"] == "blmonitor"
    used = {panel["type"] for panel in board["panels"]}
    assert used <= PANEL_TYPES
    assert used == {r["id"] for r in board["__requires"] if r["type"] == "panel"}
    for variable in board["templating"]["list"]:
        assert variable["datasource"] == DATASOURCE, variable["name"]


def test_every_panel_has_a_unique_id_a_datasource_and_a_query() -> None:
    panels = dashboard()["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids)
    for panel in panels:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE and target["expr"].strip(), panel["title"]


# The keys of Grafana's dashboard model (schemaVersion 36 and later) that a typo would miss:
# Grafana ignores an unknown key, so "gridpos" or "fieldconfig" imports without a word.
DASHBOARD_KEYS = {
    "id", "uid", "title", "description", "revision", "gnetId", "tags", "timezone", "editable",
    "graphTooltip", "time", "timepicker", "fiscalYearStartMonth", "liveNow", "weekStart",
    "refresh", "schemaVersion", "version", "panels", "templating", "annotations", "links",
    "__inputs", "__elements", "__requires",
}  # fmt: skip  # the last three: for import
PANEL_KEYS = {
    "type", "id", "pluginVersion", "tags", "targets", "title", "description", "transparent",
    "datasource", "gridPos", "links", "repeat", "repeatDirection", "maxPerRow", "maxDataPoints",
    "transformations", "interval", "timeFrom", "timeShift", "hideTimeOverride", "libraryPanel",
    "options", "fieldConfig",
}  # fmt: skip
FIELD_KEYS = {
    "displayName", "displayNameFromDS", "description", "path", "writeable", "filterable", "unit",
    "decimals", "min", "max", "mappings", "thresholds", "color", "links", "noValue", "custom",
}  # fmt: skip
VARIABLE_KEYS = {
    "type", "name", "label", "hide", "skipUrlSync", "description", "query", "datasource",
    "current", "multi", "options", "refresh", "sort", "includeAll", "allValue", "regex",
    "definition",
}  # fmt: skip


def test_the_dashboard_uses_only_keys_of_grafanas_model() -> None:
    board = dashboard()
    assert set(board) <= DASHBOARD_KEYS
    for panel in board["panels"]:
        assert set(panel) <= PANEL_KEYS, panel["title"]
        assert set(panel["fieldConfig"]) == {"defaults", "overrides"}, panel["title"]
        assert set(panel["fieldConfig"]["defaults"]) <= FIELD_KEYS, panel["title"]
        for step in panel["fieldConfig"]["defaults"].get("thresholds", {}).get("steps", []):
            assert set(step) == {"color", "value"}, panel["title"]
    for variable in board["templating"]["list"]:
        assert set(variable) <= VARIABLE_KEYS, variable["name"]


def test_the_panels_tile_the_grid_without_overlapping() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard()["panels"]:
        box = panel["gridPos"]
        assert box["x"] >= 0 and box["w"] > 0 and box["x"] + box["w"] <= 24, panel["title"]
        for x in range(box["x"], box["x"] + box["w"]):
            for y in range(box["y"], box["y"] + box["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


@pytest.mark.parametrize(
    "subject",
    ["blmonitor_listed", "blmonitor_zone_usable", "blmonitor_last_run_duration_seconds",
     "blmonitor_last_run_errors", "blmonitor_last_run_failed", "blmonitor_checks_failing_runs",
     "blmonitor_bounce_listed", "blmonitor_smarthost_routed", "blmonitor_cause_findings",
     "blmonitor_notifications_pending", "blmonitor_last_run_age_seconds",
     "blmonitor_source_listed", "blmonitor_reputation", "blmonitor_source_up"],
)  # fmt: skip
def test_the_dashboard_has_a_panel_for(subject) -> None:
    assert any(
        subject in METRIC_RE.findall(target["expr"])
        for panel in dashboard()["panels"]
        for target in panel["targets"]
    )


def test_the_readme_scrape_config_matches_the_rules() -> None:
    readme = (DEPLOY / "README.md").read_text("utf-8")
    [snippet] = re.findall(r"```yaml\n(# prometheus\.yml\n.*?)```", readme, re.DOTALL)
    config = yaml.safe_load(snippet)
    [job] = config["scrape_configs"]
    assert job["job_name"] == "blmonitor"  # up{job="blmonitor"} in the exporter-down alert
    assert job["static_configs"] == [{"targets": ["127.0.0.1:9469"]}]
    assert "blmonitor run --metrics 127.0.0.1:9469" in snippet
    assert config["rule_files"] == ["/etc/prometheus/blmonitor-alerts.yml"]
    assert (
        "install -m 0644 deploy/prometheus-alerts.yml /etc/prometheus/blmonitor-alerts.yml"
        in readme
    )
    assert "deploy/grafana-dashboard.json" in readme
