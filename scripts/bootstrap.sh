# Sourced by the other scripts: make sure ffmpeg and a virtualenv with the requirements exist.
# Usage: source scripts/bootstrap.sh requirements.txt|requirements-dev.txt
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ensure_ffmpeg() {
  if command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null; then return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo ">> ffmpeg not found: installing it with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq ffmpeg >&2
  else
    echo "error: ffmpeg and ffprobe are required. Install them first:" >&2
    echo "  Debian/Ubuntu: sudo apt-get install -y ffmpeg    macOS: brew install ffmpeg" >&2
    exit 1
  fi
}

ensure_venv() {
  local requirements="$1" python="${PYTHON:-python3}"
  if [ ! -x .venv/bin/python ]; then
    echo ">> creating .venv" >&2
    "$python" -m venv .venv
  fi
  # Reinstall only when the requirement files change.
  local stamp=".venv/.installed-$(cat requirements*.txt | sha256sum | cut -c1-16)-${requirements}"
  if [ ! -f "$stamp" ]; then
    echo ">> installing $requirements into .venv" >&2
    .venv/bin/python -m pip install -q --disable-pip-version-check -r "$requirements" >&2
    touch "$stamp"
  fi
}

ensure_ffmpeg
ensure_venv "${1:-requirements.txt}"
