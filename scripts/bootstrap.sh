# Sourced by the other scripts: make sure Python 3.11+, ffmpeg and a virtualenv with the requirements exist.
# Usage: source scripts/bootstrap.sh requirements.txt|requirements-dev.txt
# PYTHON names the interpreter that creates the venv (default python3). BOOTSTRAP_VENV is the venv's
# folder (default .venv, which the other scripts run): set it only to try this script on a throwaway venv.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

MIN_PYTHON_MINOR=11  # Python 3.11 or newer

# Install Debian package $1 with apt-get when root, else stop with $2 (what needs it and how to install it).
apt_install_or_explain() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo ">> $1 not found: installing it with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq "$1" >&2
  else
    echo "error: $2" >&2
    exit 1
  fi
}

ensure_ffmpeg() {
  if command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null; then return; fi
  apt_install_or_explain ffmpeg "ffmpeg and ffprobe are required. Install them first:
  Debian/Ubuntu: sudo apt-get install -y ffmpeg    macOS: brew install ffmpeg"
}

# The dashboard's browser tests drive Debian's chromium through Playwright (never Playwright's own
# download); the TLS upload test makes its certificate with the openssl command.
ensure_test_tools() {
  [ -x /usr/bin/chromium ] || apt_install_or_explain chromium "the dashboard's browser tests need Debian's \
chromium at /usr/bin/chromium. Install it first:
  Debian: sudo apt-get install -y chromium    (elsewhere: a Chromium binary at /usr/bin/chromium)"
  command -v openssl >/dev/null || apt_install_or_explain openssl "the TLS upload test needs the openssl \
command: sudo apt-get install -y openssl"
}

# The interpreter's version (major.minor.micro), or nothing when it does not run.
python_version() { "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null || true; }

recent_enough() {
  local major minor
  IFS=. read -r major minor _ <<<"$1"
  [[ "$major" =~ ^[0-9]+$ && "$minor" =~ ^[0-9]+$ ]] && (( major > 3 || (major == 3 && minor >= MIN_PYTHON_MINOR) ))
}

python_install_hint() {
  echo "  Debian/Ubuntu: sudo apt-get install -y python3 python3-venv  (Ubuntu 22.04: python3.11 python3.11-venv)" >&2
  echo "  macOS: brew install python@3.12" >&2
  echo "  then run this again, naming the interpreter if it is not python3: PYTHON=python3.12 bash $0" >&2
}

require_python() {
  local version
  version=$(python_version "$1")
  if ! recent_enough "$version"; then
    echo "error: the worker needs Python 3.$MIN_PYTHON_MINOR or newer, but $1 is ${version:+Python }${version:-not a Python that runs}. Install one:" >&2
    python_install_hint
    exit 1
  fi
}

# A venv made with --without-pip (or whose pip was removed) gets pip back from ensurepip.
ensure_pip() {
  local venv="$1"
  if "$venv/bin/python" -m pip --version >/dev/null 2>&1; then return; fi
  echo ">> $venv has no pip (made with --without-pip?): installing it with ensurepip" >&2
  if ! "$venv/bin/python" -m ensurepip --default-pip >/dev/null; then
    echo "error: cannot install pip into $venv: this Python has no ensurepip." >&2
    echo "  Debian/Ubuntu: sudo apt-get install -y python3-venv (or python3.X-venv for your version), then run again" >&2
    exit 1
  fi
}

ensure_venv() {
  local requirements="$1" python="${PYTHON:-python3}" venv="${BOOTSTRAP_VENV:-.venv}" version
  if [ -e "$venv/bin/python" ]; then
    version=$(python_version "$venv/bin/python")
    if ! recent_enough "$version"; then
      echo ">> $venv runs ${version:+Python }${version:-no working Python}: recreating it with $python" >&2
      require_python "$python"
      "$python" -m venv --clear "$venv"
    fi
  else
    require_python "$python"
    echo ">> creating $venv" >&2
    "$python" -m venv "$venv"
  fi
  # Reinstall only when the requirement files change.
  local stamp
  stamp="$venv/.installed-$(cat requirements*.txt | sha256sum | cut -c1-16)-$(basename "$requirements")"
  if [ ! -f "$stamp" ]; then
    ensure_pip "$venv"
    echo ">> installing $requirements into $venv" >&2
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements" >&2
    touch "$stamp"
  fi
}

ensure_ffmpeg
if [ "${1:-}" = requirements-dev.txt ]; then ensure_test_tools; fi
ensure_venv "${1:-requirements.txt}"
