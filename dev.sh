#!/usr/bin/env bash
# gridmap's one entry point for people and CI.
#
#   ./dev.sh demo   set up (venv, Python packages, map assets) and run `gridmap demo`
#   ./dev.sh test   set up (plus Debian's PostGIS and Chromium) and run ruff, mypy,
#                   the import-boundary check and the whole pytest suite
#   ./dev.sh bench NAME [ARGS]   set up (plus wrk, the HTTP load client) and run
#                   benchmarks/bench_NAME.py, e.g. ./dev.sh bench locate --seconds 10
#
# Everything the project needs is installed from here: nothing by hand.
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$(pwd)"
VENV="${GRIDMAP_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"

log() { printf '\033[1;34m[gridmap]\033[0m %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

ensure_debian_packages() {
  # PostGIS for the storage tests, Chromium for the browser tests (Debian packages).
  local missing=()
  [ -x /usr/lib/postgresql/15/bin/initdb ] && [ -f /usr/share/postgresql/15/extension/postgis.control ] \
    || missing+=(postgresql-15 postgresql-15-postgis-3)
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  # pgRouting for the patrol benchmark's pgr_chinesePostman comparison.
  [ -f /usr/share/postgresql/15/extension/pgrouting.control ] || missing+=(postgresql-15-pgrouting)
  # A CJK font so browser screenshots show the zh-CN labels.
  [ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
  # A real OSM extract gridmap does not ship (osmnx's test input, in Debian's
  # python-osmnx-doc) and osmium to turn it into .osm.pbf (tests/gridmap/test_city_from_osm.py).
  [ -f "/usr/share/doc/python-osmnx-doc/examples/tests/input_data/planet_10.068,48.135_10.071,48.137.osm" ] \
    || missing+=(python-osmnx-doc)
  command -v osmium >/dev/null || missing+=(osmium-tool)
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

ensure_python() {
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtual environment $VENV"
    "$PY" -m venv "$VENV"
  fi
  local stamp="$VENV/.gridmap-installed"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    log "installing gridmap and its dependencies into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e ".[dev]"
    touch "$stamp"
  fi
}

ensure_assets() {
  # Leaflet and plugins from the npm registry, served locally: maps work offline.
  local stamp="node_modules/.gridmap-installed"
  if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
    log "installing map assets from the npm registry (npm ci)"
    npm ci --silent --no-audit --no-fund >/dev/null
    touch "$stamp"
  fi
}

ensure_ogctests() {
  # The ogctests suite pins old httpx, pyarrow and pytest: it gets a virtual
  # environment of its own, which tests/api/test_ogctests.py runs as a subprocess.
  local venv="${GRIDMAP_OGCTESTS_VENV:-$ROOT/.venv-ogctests}"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import ogctests" 2>/dev/null; then
    log "creating the ogctests virtual environment $venv"
    "$PY" -m venv "$venv"
    "$venv/bin/python" -m pip install -q "ogctests==0.1.15"
  fi
  export GRIDMAP_OGCTESTS_VENV="$venv"
}

cmd="${1:-help}"
shift || true
case "$cmd" in
  demo)
    ensure_python
    ensure_assets
    exec "$VENV/bin/gridmap" demo "$@"
    ;;
  test)
    ensure_debian_packages
    ensure_python
    ensure_assets
    ensure_ogctests
    export PATH="$VENV/bin:$PATH"
    log "ruff"
    ruff check .
    ruff format --check gridmap api layers tests benchmarks
    log "mypy (strict)"
    mypy
    log "import boundaries"
    lint-imports
    log "pytest"
    # Two workers on two cores; each starts its own PostGIS server.
    exec pytest -n "${GRIDMAP_TEST_WORKERS:-2}" --durations=30 "$@"
    ;;
  bench)
    name="${1:?usage: ./dev.sh bench NAME [ARGS] (benchmarks/bench_NAME.py)}"
    shift
    ensure_debian_packages
    # wrk (C, one thread) loads the HTTP benchmarks with little of the 2 cores.
    command -v wrk >/dev/null || {
      log "installing Debian package: wrk"
      as_root apt-get update -qq
      DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends wrk >/dev/null
    }
    ensure_python
    ensure_assets
    exec "$VENV/bin/python" "benchmarks/bench_${name}.py" "$@"
    ;;
  setup)
    ensure_python
    ensure_assets
    ;;
  *)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    [ "$cmd" = help ] || exit 2
    ;;
esac
