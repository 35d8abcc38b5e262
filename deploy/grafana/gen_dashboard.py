#!/usr/bin/env python3
# Generates paperboy-dashboard.json (stdout). Edit this, then:
#   python3 deploy/grafana/gen_dashboard.py > deploy/grafana/paperboy-dashboard.json
# scripts/check-deploy.sh fails when the JSON and this script disagree.
import json
DS = {"type": "prometheus", "uid": "${datasource}"}
panels = []
pid = 0
def panel(title, targets, x, y, w, h, kind="timeseries", unit=None, desc="", extra=None):
    global pid
    pid += 1
    p = {
        "id": pid, "type": kind, "title": title, "description": desc, "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": [dict(refId=chr(65 + i), datasource=DS, expr=e, legendFormat=l, range=True)
                    for i, (e, l) in enumerate(targets)],
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {},
    }
    if unit: p["fieldConfig"]["defaults"]["unit"] = unit
    if kind == "timeseries":
        p["options"] = {"legend": {"displayMode": "table", "placement": "right", "calcs": ["mean", "max"]},
                        "tooltip": {"mode": "multi", "sort": "desc"}}
        p["fieldConfig"]["defaults"]["custom"] = {"fillOpacity": 10, "lineWidth": 1, "showPoints": "never"}
    if kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "background", "graphMode": "none", "textMode": "value"}
    if extra: p["fieldConfig"]["defaults"].update(extra)
    panels.append(p)

def row(title, y):
    global pid
    pid += 1
    panels.append({"id": pid, "type": "row", "title": title, "collapsed": False,
                   "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []})

red_green = {"thresholds": {"mode": "absolute", "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}]}}
dead_thr = {"thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}, {"color": "red", "value": 1}]}}
ri = "$__rate_interval"

row("Overview", 0)
panel("Live workers", [("max(paperboy_workers_live)", "workers")], 0, 1, 4, 4, "stat",
      desc="Workers registered in Redis (any host).", extra=red_green)
panel("Redis up", [("min(paperboy_redis_up)", "redis")], 4, 1, 4, 4, "stat",
      desc="1 when every worker reaches Redis.",
      extra={**red_green, "mappings": [{"type": "value", "options": {"0": {"text": "DOWN"}, "1": {"text": "UP"}}}]})
panel("Scheduler leader", [("max(paperboy_scheduler_leader)", "leader")], 8, 1, 4, 4, "stat",
      desc="1 when a worker holds the scheduler lease.",
      extra={**red_green, "mappings": [{"type": "value", "options": {"0": {"text": "NONE"}, "1": {"text": "OK"}}}]})
panel("Waiting jobs", [('sum(max by (queue) (paperboy_queue_jobs{state="waiting"}))', "waiting")], 12, 1, 4, 4, "stat")
panel("Running jobs", [("sum(paperboy_jobs_running)", "running")], 16, 1, 4, 4, "stat")
panel("Dead jobs", [('sum(max by (queue) (paperboy_queue_jobs{state="dead"}))', "dead")], 20, 1, 4, 4, "stat",
      desc="Kept for `paperboy jobs retry`.", extra=dead_thr)

row("Throughput and duration", 5)
panel("Jobs succeeded / s by kind", [(f"sum by (kind) (rate(paperboy_jobs_succeeded_total[{ri}]))", "{{kind}}")],
      0, 6, 12, 8, unit="ops")
panel("Jobs failed / s by kind", [(f"sum by (kind) (rate(paperboy_jobs_failed_total[{ri}]))", "{{kind}}")],
      12, 6, 12, 8, unit="ops")
panel("Job duration p50 / p95 by kind", [
    (f"histogram_quantile(0.5, sum by (kind, le) (rate(paperboy_job_duration_seconds_bucket[{ri}])))", "p50 {{kind}}"),
    (f"histogram_quantile(0.95, sum by (kind, le) (rate(paperboy_job_duration_seconds_bucket[{ri}])))", "p95 {{kind}}"),
], 0, 14, 24, 8, unit="s")

row("Queues", 22)
panel("Queue depth by queue and state", [("max by (queue, state) (paperboy_queue_jobs)", "{{queue}} {{state}}")],
      0, 23, 12, 8, unit="short", desc="Read from Redis; every worker reports the same value, hence max.")
panel("Oldest waiting job age by queue", [("max by (queue) (paperboy_queue_oldest_waiting_seconds)", "{{queue}}")],
      12, 23, 12, 8, unit="s")

row("Failures", 31)
panel("Failures, retries and dead per kind", [
    (f"sum by (kind) (increase(paperboy_jobs_failed_total[{ri}]))", "failed {{kind}}"),
    (f"sum by (kind) (increase(paperboy_jobs_retried_total[{ri}]))", "retried {{kind}}"),
    (f"sum by (kind) (increase(paperboy_jobs_dead_total[{ri}]))", "dead {{kind}}"),
    (f"sum by (queue) (increase(paperboy_jobs_recovered_total[{ri}]))", "recovered {{queue}}"),
], 0, 32, 24, 8, unit="short")

row("Workers", 40)
panel("Live workers", [("max(paperboy_workers_live)", "live (Redis)"),
                       ('count(up{job=~"paperboy-worker.*"} == 1)', "scraped")], 0, 41, 8, 8, unit="short")
panel("Running jobs by kind", [("sum by (kind) (paperboy_jobs_running)", "{{kind}}")], 8, 41, 8, 8, unit="short")
panel("Redis up by worker", [("paperboy_redis_up", "{{instance}}")], 16, 41, 8, 8, unit="short",
      extra={"min": 0, "max": 1})

dash = {
    "uid": "paperboy-workers",
    "title": "paperboy workers",
    "description": "paperboy job queues and workers (metrics of paperboy-worker /metrics).",
    "tags": ["paperboy"],
    "schemaVersion": 39,
    "version": 1,
    "editable": True,
    "graphTooltip": 1,
    "time": {"from": "now-6h", "to": "now"},
    "refresh": "30s",
    "timezone": "",
    "annotations": {"list": []},
    "links": [],
    "templating": {"list": [{
        "name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
        "current": {}, "hide": 0, "refresh": 1, "regex": "", "includeAll": False, "multi": False, "options": [],
    }]},
    "panels": panels,
}
print(json.dumps(dash, indent=2))
