# Idempotent, quiet installs for Debian/Ubuntu. Sourced by scripts/dev, scripts/test and bench/run.
# Prints only when something is installed or fails.

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    echo "need root (or sudo) to run: $*" >&2; return 1; fi
}

_apt_updated=""
# ensure_apt COMMAND PACKAGE: install PACKAGE when COMMAND is not on PATH.
ensure_apt() {
  local cmd=$1 pkg=$2
  command -v "$cmd" >/dev/null 2>&1 && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$cmd is missing and this is not a Debian/Ubuntu machine: install $pkg yourself" >&2
    return 1
  fi
  echo "installing $pkg ..." >&2
  if [ -z "$_apt_updated" ]; then
    as_root apt-get update -qq >/dev/null
    _apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
}

ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is missing: install a Rust toolchain (https://rustup.rs) first" >&2
    return 1
  fi
}
