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

# ensure_postfix: Postfix for tests/api/mta.rs, which runs private instances of it (own config,
# queue and Maildir in a temp dir, on a loopback port). Installed with "No configuration" and with
# service starts refused, so no system MTA is configured or left listening on port 25.
ensure_postfix() {
  command -v postfix >/dev/null 2>&1 && return 0
  echo "postfix postfix/main_mailer_type select No configuration" | as_root debconf-set-selections
  local policy=/usr/sbin/policy-rc.d added="" rc=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null && as_root chmod 755 "$policy"
    added=1
  fi
  ensure_apt postfix postfix || rc=$?
  if [ -n "$added" ]; then as_root rm -f "$policy"; fi
  # Belt and braces: should a package script have started the system instance anyway, stop it.
  as_root postfix status >/dev/null 2>&1 && as_root postfix stop >/dev/null 2>&1
  return "$rc"
}
