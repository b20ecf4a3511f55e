#!/usr/bin/env bash
# Sets up perfreport on a Debian/Ubuntu machine: system packages, a virtual environment in
# .venv, a CPU build of torch and perfreport.
#
#   bash scripts/setup.sh            # to write reports
#   bash scripts/setup.sh --tests    # also what the tests need (Chromium, poppler, pytest,
#                                    # transformers, Jupyter)
#   bash scripts/setup.sh --no-system   # no apt-get (no root): say what is missing instead
#   bash scripts/setup.sh --dry-run     # print the plan, install nothing
#
# Without root or sudo: pass --no-system, and get Graphviz (`dot`) and Pango from wherever
# the machine's packages come from (conda: `conda install -c conda-forge graphviz pango`).
set -euo pipefail
cd "$(dirname "$0")/.."

TESTS=0 SYSTEM=1 DRY=0
for arg in "$@"; do
  case "$arg" in
    --tests) TESTS=1 ;;
    --no-system) SYSTEM=0 ;;
    --dry-run) DRY=1 ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done

# Graphviz draws the module graph; Pango lays out the PDF; the fonts keep it readable.
# jemalloc and tcmalloc: the timing stage's allocator experiment tries them when present.
APT_PACKAGES="graphviz libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core libjemalloc2 libtcmalloc-minimal4"
EXTRAS="tensorboard,deploy"
if [ "$TESTS" = 1 ]; then
  # Chromium: the HTML safety test opens reports in a real browser; poppler: PDF checks.
  APT_PACKAGES="$APT_PACKAGES chromium poppler-utils"
  EXTRAS="tensorboard,deploy,test,dev"
fi
# The tested floor (pyproject.toml asks for torch>=2.13). Where pip's index serves CUDA
# wheels, add --index-url https://download.pytorch.org/whl/cpu for the CPU build.
TORCH="torch==2.13.0"
PYTHON="${PYTHON:-python3}"

started=$SECONDS
step() { echo "==> $1 [$((SECONDS - started)) s so far]"; }
run() { if [ "$DRY" = 1 ]; then echo "    would run: $*"; else "$@"; fi; }

missing=""
for pkg in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
echo "perfreport set-up$([ "$TESTS" = 1 ] && echo ' (with what the tests need)'):"
echo "  system packages:${missing:- none missing ($APT_PACKAGES)}"
echo "  .venv: $TORCH (CPU build, about 200 MB), perfreport and its dependencies [$EXTRAS]"
echo "  roughly 2-5 minutes on a first run$([ "$TESTS" = 1 ] && echo ', 4-8 with Chromium and the test packages'); seconds when already set up"

if [ -n "$missing" ]; then
  if [ "$SYSTEM" = 1 ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
      if ! command -v sudo > /dev/null; then
        echo "setup.sh: installing$missing needs root: run as root, or pass --no-system and install them yourself" >&2
        exit 1
      fi
      SUDO="sudo"
    fi
    step "installing system packages:$missing (apt-get, about 1-3 minutes)"
    run $SUDO apt-get update -qq
    run env DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
  else
    echo "  --no-system: not installing$missing; without graphviz the graph stage is skipped, without Pango no PDF"
  fi
fi

if [ -x .venv/bin/python ]; then
  step "using the existing .venv ($(.venv/bin/python -V 2>&1))"
else
  step "creating .venv with $PYTHON (needs Python 3.11 or later)"
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "setup.sh: $PYTHON is $("$PYTHON" -V 2>&1); perfreport needs Python 3.11 or later (set PYTHON=python3.11)" >&2
    exit 1
  }
  run "$PYTHON" -m venv .venv
fi
run .venv/bin/python -m pip install -q --upgrade pip
step "installing $TORCH (CPU build; about 200 MB, 1-3 minutes the first time)"
run .venv/bin/python -m pip install -q "$TORCH"
step "installing perfreport with [$EXTRAS] (about 1-2 minutes the first time)"
run .venv/bin/python -m pip install -q -e ".[$EXTRAS]"
step "done: .venv/bin/perfreport"
