#!/usr/bin/env bash
# Static checks of the deployment files (deploy/, compose/): nothing is built or started.
#   scripts/check-deploy.sh                 run every check; exit 1 if any fails
#   scripts/check-deploy.sh metrics FILE    lint a /metrics scrape with promtool
#   source scripts/check-deploy.sh          only define the functions (check_metrics_file, ...)
# Installs what it needs on Debian when missing: promtool (package prometheus, without
# recommends; its daemon is not needed) and PyYAML. Checks whose tool is absent (docker compose,
# kubectl, systemd-analyze) are skipped with the reason printed.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FAILED=()
SKIPPED=()

ok()   { printf '  ok    %s\n' "$1"; }
fail() { printf '  FAIL  %s\n' "$1"; FAILED+=("$1"); }
skip() { printf '  skip  %s (%s)\n' "$1" "$2"; SKIPPED+=("$1"); }

# run NAME CMD...: runs a check, shows its output only when it fails.
run() {
  local name=$1 out; shift
  if out=$("$@" 2>&1); then ok "$name"; else fail "$name"; printf '%s\n' "$out" | sed 's/^/        /'; fi
}

ensure_promtool() {
  command -v promtool >/dev/null 2>&1 && return 0
  echo "installing promtool (apt package prometheus, no recommends)" >&2
  local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq >/dev/null && \
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  command -v promtool >/dev/null 2>&1
}

ensure_pyyaml() {
  python3 -c 'import yaml' 2>/dev/null && return 0
  echo "installing PyYAML" >&2
  python3 -m pip install -q pyyaml 2>/dev/null || python3 -m pip install -q --break-system-packages pyyaml \
    || { local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo; $sudo apt-get install -y -qq python3-yaml >/dev/null; }
  python3 -c 'import yaml'
}

# Lints the text of a worker's /metrics (e.g. `curl -s 127.0.0.1:9464/metrics > FILE`).
check_metrics_file() {
  ensure_promtool >/dev/null || { echo "promtool is not available" >&2; return 1; }
  promtool check metrics < "$1"
}

# Every YAML file parses (multi-document), and the structure the deployment relies on holds.
check_yaml_structure() {
  python3 - "$ROOT" <<'PY'
import glob, os, re, sys, yaml
root = sys.argv[1]
errors = []
files = sorted(set(glob.glob(f"{root}/deploy/**/*.y*ml", recursive=True)
                   + glob.glob(f"{root}/compose/**/*.y*ml", recursive=True)))
docs = {}
for f in files:
    rel = os.path.relpath(f, root)
    try:
        docs[rel] = [d for d in yaml.safe_load_all(open(f)) if d is not None]
    except yaml.YAMLError as e:
        errors.append(f"{rel}: does not parse: {e}")
print(f"parsed {len(docs)} YAML files ({sum(len(d) for d in docs.values())} documents)")

def secs(v):
    m = re.fullmatch(r"(\d+)s", str(v))
    return int(m.group(1)) if m else int(v)

# Kubernetes: names, no hard-coded namespace, grace periods, probes, security, CronJob policy.
grace = None
k8s = [(f, d) for f, ds in docs.items() if f.startswith("deploy/kubernetes/") for d in ds]
for f, d in k8s:
    if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == "paperboy-config":
        grace = int(d["data"]["PAPERBOY_GRACE_SECS"])
        for secret in ("PAPERBOY_REDIS_URL", "PAPERBOY_DATABASE_URL"):
            if secret in d["data"]:
                errors.append(f"{f}: {secret} belongs in the Secret, not the ConfigMap")
if grace is None:
    errors.append("deploy/kubernetes: no ConfigMap paperboy-config with PAPERBOY_GRACE_SECS")
for f, d in k8s:
    kind = d.get("kind")
    if kind in ("Kustomization", "Component"):
        continue
    name = (d.get("metadata") or {}).get("name")
    if not d.get("apiVersion") or not kind or not name:
        errors.append(f"{f}: a document without apiVersion, kind or metadata.name")
        continue
    if "namespace" in d["metadata"]:
        errors.append(f"{f}: {kind}/{name} sets a namespace (the manifests are namespace-agnostic)")
    if kind == "CronJob":
        if d["spec"].get("concurrencyPolicy") != "Forbid":
            errors.append(f"{f}: CronJob/{name} needs concurrencyPolicy: Forbid")
        pod = d["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    elif kind in ("Deployment", "Job"):
        pod = d["spec"]["template"]["spec"]
    else:
        continue
    if not pod.get("securityContext", {}).get("runAsNonRoot"):
        errors.append(f"{f}: {kind}/{name}: pod securityContext.runAsNonRoot is not true")
    for c in pod["containers"]:
        sc = c.get("securityContext", {})
        if not sc.get("readOnlyRootFilesystem") or sc.get("allowPrivilegeEscalation") is not False:
            errors.append(f"{f}: {kind}/{name}/{c['name']}: needs readOnlyRootFilesystem and no privilege escalation")
        if "command" in c:
            errors.append(f"{f}: {kind}/{name}/{c['name']}: use args, not command (keeps tini as PID 1)")
        envs = {e["name"] for e in c.get("env", [])}
        for s in ("PAPERBOY_REDIS_URL_FILE", "PAPERBOY_DATABASE_URL_FILE"):
            if s not in envs:
                errors.append(f"{f}: {kind}/{name}/{c['name']}: {s} not set")
    if kind == "Deployment":
        tg = pod.get("terminationGracePeriodSeconds", 30)
        if grace is not None and tg <= grace:
            errors.append(f"{f}: Deployment/{name}: terminationGracePeriodSeconds {tg} <= PAPERBOY_GRACE_SECS {grace}")
        c = pod["containers"][0]
        if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
            errors.append(f"{f}: Deployment/{name}: readiness probe must be /readyz")
        if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
            errors.append(f"{f}: Deployment/{name}: liveness probe must be /healthz")

# KEDA Redis scaler: the list name follows ARCHITECTURE.md's layout.
for f, d in k8s:
    if d.get("kind") == "ScaledObject":
        for t in d["spec"]["triggers"]:
            if t["type"] == "redis":
                m = re.fullmatch(r"([^:{}]+):\{\1:archive\}:waiting", t["metadata"]["listName"])
                if not m:
                    errors.append(f"{f}: Redis list name {t['metadata']['listName']!r} is not <prefix>:{{<prefix>:archive}}:waiting")

# Compose: a worker must get more time to stop than PAPERBOY_GRACE_SECS; Redis keeps an AOF.
for f in ("compose/docker-compose.yml", "compose/docker-compose.scaled.yml"):
    if f not in docs:
        errors.append(f"{f}: missing")
        continue
    services = docs[f][0]["services"]
    redis_cmd = services["redis"]["command"]
    redis_cmd = " ".join(redis_cmd) if isinstance(redis_cmd, list) else redis_cmd
    if "--appendonly yes" not in redis_cmd:
        errors.append(f"{f}: redis runs without --appendonly yes")
    for name, s in services.items():
        cmd = s.get("command") or []
        if isinstance(cmd, list) and cmd[:2] == ["paperboy-worker", "run"]:
            env = s.get("environment", {})
            g = re.search(r"(\d+)\}?$", str(env.get("PAPERBOY_GRACE_SECS", "30"))).group(1)
            if secs(s.get("stop_grace_period", "10s")) <= int(g):
                errors.append(f"{f}: {name}: stop_grace_period must exceed PAPERBOY_GRACE_SECS ({g})")
        if s.get("image", "").startswith("${PAPERBOY_IMAGE") and s.get("command", [None])[0] == "paperboy-worker" \
                and s["command"][1] == "migrate" and not s.get("healthcheck", {}).get("disable"):
            errors.append(f"{f}: {name}: one-shot service should disable the image's healthcheck")

for e in errors:
    print(e)
sys.exit(1 if errors else 0)
PY
}

# The Grafana dashboard: JSON, every panel has a datasource and queries; the generator agrees;
# every query is valid PromQL (checked by promtool as recording rules).
check_grafana() {
  local dir="$ROOT/deploy/grafana" tmp
  tmp=$(mktemp -d)
  python3 - "$dir/paperboy-dashboard.json" "$tmp/dashboard.rules.yml" <<'PY' || { rm -rf "$tmp"; return 1; }
import json, sys, yaml
d = json.load(open(sys.argv[1]))
errors, rules = [], []
if d.get("schemaVersion", 0) < 36:
    errors.append(f"schemaVersion {d.get('schemaVersion')} is old")
if not any(v.get("type") == "datasource" for v in d.get("templating", {}).get("list", [])):
    errors.append("no datasource variable")
panels = [p for p in d["panels"] if p["type"] != "row"]
for p in panels:
    t = p.get("title", f"panel {p.get('id')}")
    if not p.get("datasource"):
        errors.append(f"{t}: no datasource")
    if not p.get("targets"):
        errors.append(f"{t}: no targets")
    for q in p.get("targets", []):
        if not q.get("expr") or not q.get("datasource"):
            errors.append(f"{t}: target {q.get('refId')} without expr or datasource")
        else:
            rules.append({"record": f"dashboard:check:{len(rules)}",
                          "expr": q["expr"].replace("$__rate_interval", "5m")})
ids = [p["id"] for p in d["panels"]]
if len(ids) != len(set(ids)):
    errors.append("duplicate panel ids")
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(sys.argv[2], "w"))
print(f"{len(panels)} panels, {len(rules)} queries")
for e in errors:
    print(e)
sys.exit(1 if errors else 0)
PY
  promtool check rules "$tmp/dashboard.rules.yml" || { rm -rf "$tmp"; return 1; }
  python3 "$dir/gen_dashboard.py" | cmp -s - "$dir/paperboy-dashboard.json" \
    || { echo "paperboy-dashboard.json differs from gen_dashboard.py's output: regenerate it"; rm -rf "$tmp"; return 1; }
  rm -rf "$tmp"
}

# promtool check config; Debian's promtool is built without Kubernetes service discovery, so
# there the kubernetes_sd_configs jobs are dropped from a copy (next to the original so relative
# rule paths still resolve) and the rest is checked.
check_prom_config() {
  local cfg=$1 out
  if out=$(promtool check config "$cfg" 2>&1); then echo "$out"; return 0; fi
  if grep -q 'field kubernetes_sd_configs not found' <<<"$out"; then
    local copy; copy="$(dirname "$cfg")/.check-deploy.$$.yml"
    python3 - "$cfg" > "$copy" <<'PY'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
c["scrape_configs"] = [s for s in c["scrape_configs"] if "kubernetes_sd_configs" not in s]
yaml.safe_dump(c, sys.stdout, sort_keys=False)
PY
    echo "(this promtool lacks kubernetes_sd_configs: checking the other scrape jobs)"
    promtool check config "$copy"; local rc=$?
    rm -f "$copy"
    return $rc
  fi
  echo "$out"
  return 1
}

check_dockerfile() {
  local f="$ROOT/deploy/Dockerfile" errors=0
  [ "$(grep -c '^FROM ' "$f")" -ge 2 ] || { echo "not multi-stage"; errors=1; }
  grep -q '^USER paperboy' "$f" || { echo "no non-root USER"; errors=1; }
  grep -q '^HEALTHCHECK ' "$f" || { echo "no HEALTHCHECK"; errors=1; }
  grep -q '^ENTRYPOINT \["/usr/bin/tini", "--"\]' "$f" || { echo "ENTRYPOINT is not tini"; errors=1; }
  grep -q 'cargo build --release --locked' "$f" || { echo "release build is not --locked"; errors=1; }
  grep -q 'no-install-recommends' "$f" || { echo "apt-get install without --no-install-recommends"; errors=1; }
  grep -q 'rm -rf /var/lib/apt/lists' "$f" || { echo "apt lists left in the image"; errors=1; }
  grep -qE '^ADD +https?:' "$f" && { echo "ADD from a URL"; errors=1; }
  grep -q '^target/' "$ROOT/.dockerignore" || { echo ".dockerignore does not exclude target/"; errors=1; }
  return $errors
}

check_compose() {
  local f=$1
  # The scaled file requires passwords; any value does for validation.
  (cd "$ROOT/compose" && REDIS_PASSWORD=x POSTGRES_PASSWORD=x docker compose -f "$f" config -q)
}

check_kustomize() { kubectl kustomize "$1" >/dev/null; }

# systemd-analyze verify with the binaries replaced by stubs (they need not be installed here).
check_systemd() {
  local tmp; tmp=$(mktemp -d)
  mkdir -p "$tmp/bin"
  for b in paperboy paperboy-worker; do printf '#!/bin/sh\n' > "$tmp/bin/$b"; chmod +x "$tmp/bin/$b"; done
  local units=()
  for u in "$ROOT"/deploy/systemd/*.service "$ROOT"/deploy/systemd/*.timer; do
    sed "s#/usr/local/bin/#$tmp/bin/#g" "$u" > "$tmp/$(basename "$u")"
    case "$u" in *@.service) units+=("$tmp/$(basename "${u%@.service}")@check.service") ;;
                 *) units+=("$tmp/$(basename "$u")") ;; esac
  done
  local out; out=$(cd "$tmp" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "${units[@]}" 2>&1); local rc=$?
  rm -rf "$tmp"
  # Unknown keys are only warnings for systemd; treat any output as a failure.
  if [ $rc -ne 0 ] || [ -n "$out" ]; then echo "$out"; return 1; fi
  echo "${#units[@]} units"
}

main() {
  cd "$ROOT"
  local start=$SECONDS
  echo "check-deploy: static checks of deploy/ and compose/"
  ensure_pyyaml || { echo "PyYAML is missing and could not be installed" >&2; exit 1; }
  ensure_promtool || { echo "promtool is missing and could not be installed" >&2; exit 1; }

  echo "YAML and structure"
  run "every YAML file parses; k8s/compose structure (grace periods, probes, non-root, _FILE secrets)" check_yaml_structure

  echo "Prometheus ($(promtool --version 2>&1 | head -n1))"
  run "promtool check rules deploy/prometheus/rules/paperboy.rules.yml" promtool check rules deploy/prometheus/rules/paperboy.rules.yml
  run "promtool test rules deploy/prometheus/tests/paperboy.rules.test.yml" promtool test rules deploy/prometheus/tests/paperboy.rules.test.yml
  run "promtool check config deploy/prometheus/prometheus.yml" check_prom_config deploy/prometheus/prometheus.yml
  run "promtool check config compose/prometheus.yml" check_prom_config compose/prometheus.yml

  echo "Grafana"
  run "deploy/grafana/paperboy-dashboard.json: datasource + targets per panel, PromQL valid, generator in sync" check_grafana

  echo "Dockerfile"
  run "deploy/Dockerfile basics (multi-stage, --locked, non-root, tini, healthcheck, slim apt)" check_dockerfile

  echo "Compose"
  if docker compose version >/dev/null 2>&1; then
    run "docker compose config -q: docker-compose.yml" check_compose docker-compose.yml
    run "docker compose config -q: docker-compose.scaled.yml" check_compose docker-compose.scaled.yml
  else
    skip "docker compose config -q (both files)" "docker compose is not available"
  fi

  echo "Kubernetes"
  if command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
    run "kubectl kustomize deploy/kubernetes" check_kustomize deploy/kubernetes
    run "kubectl kustomize deploy/kubernetes/overlays/example (cronjobs + keda-redis components)" \
      check_kustomize deploy/kubernetes/overlays/example
  else
    skip "kubectl kustomize" "kubectl is not available"
  fi

  echo "systemd"
  if command -v systemd-analyze >/dev/null 2>&1; then
    run "systemd-analyze verify deploy/systemd/*" check_systemd
  else
    skip "systemd-analyze verify" "systemd-analyze is not available"
  fi

  echo "check-deploy: ${#FAILED[@]} failed, ${#SKIPPED[@]} skipped, $((SECONDS - start)) s"
  [ ${#FAILED[@]} -eq 0 ]
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -uo pipefail
  case "${1:-}" in
    metrics) [ $# -eq 2 ] || { echo "usage: $0 metrics FILE" >&2; exit 2; }; check_metrics_file "$2" ;;
    "") main ;;
    *) echo "usage: $0 [metrics FILE]" >&2; exit 2 ;;
  esac
fi
