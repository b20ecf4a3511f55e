#!/usr/bin/env bash
# Sets up perfreport on a fresh Debian/Ubuntu machine: system packages (Graphviz's dot,
# Pango for WeasyPrint, poppler for PDF checks, Chromium for the HTML safety test,
# jemalloc and tcmalloc for the timing stage's allocator experiment), a virtual
# environment in .venv, a CPU build of torch and perfreport with its extras.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="graphviz libpango-1.0-0 libpangoft2-1.0-0 poppler-utils chromium fonts-dejavu-core libjemalloc2 libtcmalloc-minimal4"
missing=""
for pkg in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing system packages:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch is pinned here (a CPU build); pyproject.toml only asks for torch>=2.4.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[pdf,tensorboard,deploy,test]"
echo "perfreport is set up: .venv/bin/perfreport"
