#!/usr/bin/env bash
# Install everything the product and its tests need, from the package registries:
# Python packages into .venv, htmx and axe-core from npm, Debian's nginx (the
# front of scripts/serve.sh) and Chromium for the browser tests (Debian packages
# only as root). Safe to run again; it only does what is missing.
#   scripts/setup.sh            # app + tests
#   scripts/setup.sh --app      # app only (nginx, no Chromium, no test packages)
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-all}"
PY="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip >/dev/null
if [ "$mode" = "--app" ]; then
  python -m pip install -q -e ".[server]"
else
  python -m pip install -q -e ".[server,test]"
fi

echo "setup: installing front-end packages from npm"
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --silent; else npm install --no-audit --no-fund --silent; fi
mkdir -p searchapp/static/vendor
cp node_modules/htmx.org/dist/htmx.min.js searchapp/static/vendor/htmx.min.js

need_apt=""
# nginx: the buffering front that scripts/serve.sh (the production stack) puts
# before gunicorn; also for --app. Debian installs it in /usr/sbin.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt="nginx"
if [ "$mode" != "--app" ]; then
  command -v chromium >/dev/null 2>&1 || need_apt="$need_apt chromium"
  # A CJK font, so screenshots show Chinese rather than empty boxes (tests pass without).
  [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || [ -d /usr/share/fonts/opentype/noto ] || need_apt="$need_apt fonts-wqy-microhei"
  # docker-compose (the client only; no engine runs here): tests/test_compose.py
  # has it resolve docker-compose.yml as Compose itself would.
  command -v docker-compose >/dev/null 2>&1 || need_apt="$need_apt docker-compose"
fi
need_apt="${need_apt# }"
if [ -n "$need_apt" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian packages: $need_apt"
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need_apt >/dev/null
  else
    echo "setup: WARNING missing Debian packages ($need_apt) cannot be installed without root:" \
      "browser tests skip without chromium; scripts/serve.sh and its tests need nginx" >&2
  fi
fi
echo "setup: done"
