#!/usr/bin/env python3
"""Sanity checks of the monitoring files, without promtool or a running Prometheus.

Run from the repository root (CI runs it from .ci/run):  python3 deploy/check_monitoring.py

- deploy/prometheus/prometheus.yml: parses, scrapes the app's /metrics as job `sovamed`, and
  loads the rule file that docker-compose.yml mounts;
- deploy/prometheus/alerts.yml: parses; every rule has a unique alert name, an expression with
  balanced brackets, a severity and a summary;
- deploy/grafana/: the data source and dashboard provider parse; the dashboard is JSON whose
  panels query the provisioned data source;
- every metric named in an alert or a panel is one the app exposes (METRICS below), so a
  renamed metric cannot leave an alert silently matching nothing.

Needs a YAML parser: ruamel.yaml (installed with check-jsonschema) or PyYAML.
"""

import json
import re
import sys
from pathlib import Path

try:
    from ruamel.yaml import YAML

    def load_yaml(path):
        return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))

except ImportError:  # pragma: no cover - fall back to PyYAML
    import yaml

    def load_yaml(path):
        return yaml.safe_load(path.read_text(encoding="utf-8"))


# What the app serves at /metrics (src/telemetry/metrics.rs and the modules that record), plus
# Prometheus's own `up`. Histogram series are named with their _bucket/_sum/_count suffix.
METRICS = {
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "http_request_duration_seconds_sum",
    "http_request_duration_seconds_count",
    "schedule_cache_requests_total",
    "mis_requests_total",
    "mis_request_duration_seconds_bucket",
    "mis_request_duration_seconds_sum",
    "mis_request_duration_seconds_count",
    "sync_runs_total",
    "sms_outbox_depth",
    "sms_outbox_unknown",
    "sms_send_total",
    "sms_delivery_total",
    "db_pool_connections",
    "up",
}

# PromQL words that look like metric names but are not.
PROMQL_WORDS = {
    "sum", "by", "without", "rate", "irate", "increase", "histogram_quantile", "max", "min",
    "avg", "count", "absent", "and", "or", "unless", "vector", "on", "ignoring", "group_left",
    "group_right", "bool", "offset", "le", "clamp_min", "clamp_max", "topk", "bottomk",
    "label_values", "time", "delta", "deriv", "humanize",
}

ROOT = Path(__file__).resolve().parent.parent
errors = []


def error(where, message):
    errors.append(f"{where}: {message}")


def metric_names(expr):
    """Identifiers in a PromQL expression that stand where a metric name stands."""
    # Drop label matchers ({...}), strings, durations ([5m]) and Grafana variables first.
    stripped = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    stripped = re.sub(r"\{[^}]*\}", "{}", stripped)
    stripped = re.sub(r"\[[^\]]*\]", "[]", stripped)
    stripped = re.sub(r"\$\w+", "", stripped)
    # `by (le, route)` and `without (...)` list labels, not metrics.
    stripped = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", stripped)
    names = set()
    for match in re.finditer(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b", stripped):
        word = match.group(1)
        rest = stripped[match.end():].lstrip()
        if word in PROMQL_WORDS or rest.startswith("("):
            continue
        if re.fullmatch(r"\d+[smhdwy]?", word) or word in {"e", "Inf", "NaN"}:
            continue
        names.add(word)
    return names


def balanced(expr):
    pairs = {")": "(", "}": "{", "]": "["}
    stack = []
    for ch in re.sub(r'"(?:[^"\\]|\\.)*"', "", expr):
        if ch in "({[":
            stack.append(ch)
        elif ch in pairs:
            if not stack or stack.pop() != pairs[ch]:
                return False
    return not stack


def check_expr(where, expr):
    if not isinstance(expr, str) or not expr.strip():
        error(where, "empty expression")
        return
    if not balanced(expr):
        error(where, f"unbalanced brackets in {expr!r}")
    unknown = metric_names(expr) - METRICS
    if unknown:
        error(where, f"unknown metric(s) {sorted(unknown)} in {expr.strip()!r}")


def check_prometheus():
    path = ROOT / "deploy/prometheus/prometheus.yml"
    config = load_yaml(path)
    jobs = {job.get("job_name"): job for job in config.get("scrape_configs") or []}
    app = jobs.get("sovamed")
    if app is None:
        error(path, "no scrape job `sovamed`")
    elif app.get("metrics_path", "/metrics") != "/metrics":
        error(path, "job `sovamed` must scrape /metrics")
    rule_files = config.get("rule_files") or []
    compose = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    for rule_file in rule_files:
        if f"./deploy/prometheus/{Path(rule_file).name}:{rule_file}" not in compose:
            error(path, f"rule file {rule_file} is not mounted by docker-compose.yml")
    if "/etc/prometheus/alerts.yml" not in rule_files:
        error(path, "alerts.yml is not loaded (rule_files)")


def check_alerts():
    path = ROOT / "deploy/prometheus/alerts.yml"
    config = load_yaml(path)
    seen = set()
    groups = config.get("groups") or []
    if not groups:
        error(path, "no rule groups")
    for group in groups:
        for rule in group.get("rules") or []:
            name = rule.get("alert")
            where = f"{path.name}: {name or '(unnamed rule)'}"
            if not name:
                error(where, "a rule without `alert`")
                continue
            if name in seen:
                error(where, "duplicate alert name")
            seen.add(name)
            check_expr(where, rule.get("expr"))
            if not (rule.get("labels") or {}).get("severity"):
                error(where, "no severity label")
            if not (rule.get("annotations") or {}).get("summary"):
                error(where, "no summary annotation")
    return len(seen)


def check_grafana():
    datasources = load_yaml(ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml")
    uids = {ds.get("uid") for ds in datasources.get("datasources") or []}
    load_yaml(ROOT / "deploy/grafana/provisioning/dashboards/sovamed.yml")
    panels = 0
    for path in sorted((ROOT / "deploy/grafana/dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        if not dashboard.get("uid") or not dashboard.get("title"):
            error(path.name, "a dashboard needs a uid and a title")
        for panel in dashboard.get("panels") or []:
            if panel.get("type") == "row":
                continue
            panels += 1
            title = panel.get("title", "(untitled)")
            where = f"{path.name}: panel {title!r}"
            ds = (panel.get("datasource") or {}).get("uid")
            if ds not in uids:
                error(where, f"data source {ds!r} is not provisioned ({sorted(u for u in uids if u)})")
            targets = panel.get("targets") or []
            if not targets:
                error(where, "no query")
            for target in targets:
                check_expr(where, target.get("expr"))
    return panels


def main():
    check_prometheus()
    alerts = check_alerts()
    panels = check_grafana()
    if errors:
        for line in errors:
            print(f"check_monitoring: {line}", file=sys.stderr)
        return 1
    print(f"check_monitoring: prometheus.yml, {alerts} alert rules and {panels} dashboard panels are consistent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
