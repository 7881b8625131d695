# shellcheck shell=bash
# Helpers shared by scripts/dev, scripts/test, scripts/check-*, bench/run and bench/profile
# (sourced; bash). Installs are idempotent and quiet (Debian/Ubuntu): they print one line when
# something is installed and the tool's output only when it fails.
#
# Defines functions and EMAIL_OTP_ROOT/EMAIL_OTP_CACHE only; sets no traps and no shell options.
#   as_root CMD...                 CMD as root (directly, or through sudo)
#   apt_install PACKAGE...         apt-get install, refreshing the package lists once when needed
#   ensure_apt COMMAND PACKAGE     apt_install PACKAGE when COMMAND is not on PATH
#   ensure_rust                    fail unless cargo is on PATH
#   quietly CMD...                 run CMD; show its output only when it fails
#   ensure_venv DIR REQUIREMENTS   a Python venv with REQUIREMENTS installed, rebuilt when that
#                                  file or the interpreter changes (stamp file DIR/.stamp)
#   free_ports N / free_port       N distinct free loopback TCP ports / one
#   check NAME CMD...              one check: "ok  NAME" or "FAIL NAME" and CMD's output
#   checks_summary                 "N passed, M failed"; fails when a check failed
#   cargo_target_dir               where cargo puts its output (honours CARGO_TARGET_DIR)
#   debug_binary                   `cargo build` (a no-op when current); prints the binary's path

EMAIL_OTP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck disable=SC2034 # used by the scripts that source this file
EMAIL_OTP_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/email-otp

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "need root (or sudo) to run: $*" >&2
    return 1
  fi
}

# quietly CMD...: run CMD with its output in a temporary log; on failure print the log's tail.
quietly() {
  local log rc=0
  log=$(mktemp "${TMPDIR:-/tmp}/email-otp-quietly.XXXXXX")
  "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    tail -n 60 "$log" >&2
    echo "failed (exit $rc): $*" >&2
  fi
  rm -f "$log"
  return "$rc"
}

_email_otp_apt_updated=""
_apt_update() {
  quietly as_root apt-get update -qq || return 1
  _email_otp_apt_updated=1
}
# apt_install PACKAGE...: refreshes the package lists first when they do not know a package, and
# once more when the install fails (stale lists name versions no longer served).
apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "not a Debian/Ubuntu machine (no apt-get): install $* yourself" >&2
    return 1
  fi
  echo "installing $* ..." >&2
  local pkg
  for pkg in "$@"; do
    if [ -z "$_email_otp_apt_updated" ] && ! apt-cache show "$pkg" >/dev/null 2>&1; then
      _apt_update || return 1
    fi
  done
  local install=(as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@")
  if [ -z "$_email_otp_apt_updated" ]; then
    "${install[@]}" >/dev/null 2>&1 && return 0
    _apt_update || return 1
  fi
  quietly "${install[@]}"
}

# ensure_apt COMMAND PACKAGE: install PACKAGE when COMMAND is not on PATH.
ensure_apt() {
  local cmd=$1 pkg=$2
  command -v "$cmd" >/dev/null 2>&1 && return 0
  apt_install "$pkg" || return 1
  command -v "$cmd" >/dev/null 2>&1 || { echo "installed $pkg but $cmd is still missing" >&2; return 1; }
}

ensure_rust() {
  command -v cargo >/dev/null 2>&1 && return 0
  echo "cargo is missing: install a Rust toolchain (https://rustup.rs) first" >&2
  return 1
}

# ensure_venv DIR REQUIREMENTS: a venv at DIR with `pip install -r REQUIREMENTS` done. Rebuilt from
# scratch when REQUIREMENTS or `python3 --version` changed since the last build (DIR/.stamp);
# otherwise a no-op. A lock file (DIR.lock) keeps concurrent runs from building it twice.
ensure_venv() {
  local dir=$1 req=$2 want
  ensure_apt python3 python3 || return 1
  want=$(cat "$req" <(python3 --version 2>&1) | sha256sum | cut -c1-64)
  [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$want" ] && return 0
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_install python3-venv || return 1
  fi
  mkdir -p "$(dirname "$dir")"
  (
    if command -v flock >/dev/null 2>&1; then flock 9; fi
    # Another run may have built it while this one waited for the lock.
    [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$want" ] && exit 0
    echo "creating the Python venv $dir ..." >&2
    rm -rf "$dir"
    quietly python3 -m venv "$dir" &&
      quietly "$dir/bin/pip" install --disable-pip-version-check --no-input -q -r "$req" &&
      echo "$want" >"$dir/.stamp"
  ) 9>"$dir.lock"
}

# free_ports N: N distinct free loopback ports on one line (bound at once, then released).
free_ports() {
  ensure_apt python3 python3 || return 1
  python3 - "$1" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}
free_port() { free_ports 1; }

# check NAME CMD...: runs CMD in a subshell under `set -euo pipefail` and prints one line,
# "ok  NAME (last line CMD printed)" or "FAIL NAME" followed by CMD's output. Counts in
# CHECKS_PASSED and CHECKS_FAILED; never fails itself (see checks_summary).
check() {
  local name=$1 out err rc had_e=${-//[^e]/} detail
  shift
  out=$(mktemp "${TMPDIR:-/tmp}/email-otp-check.XXXXXX")
  err=$(mktemp "${TMPDIR:-/tmp}/email-otp-check.XXXXXX")
  # errexit would be off inside the subshell if it were the condition of an `if` or `||`.
  set +e
  (set -euo pipefail; "$@") >"$out" 2>"$err"
  rc=$?
  if [ -n "$had_e" ]; then set -e; fi
  if [ "$rc" -eq 0 ]; then
    CHECKS_PASSED=$((${CHECKS_PASSED:-0} + 1))
    detail=$(tail -n 1 "$out")
    if [ -n "$detail" ]; then printf 'ok  %s (%s)\n' "$name" "$detail"; else printf 'ok  %s\n' "$name"; fi
  else
    CHECKS_FAILED=$((${CHECKS_FAILED:-0} + 1))
    printf 'FAIL %s\n' "$name"
    cat "$out" "$err" | tail -n 150 | sed 's/^/    /'
  fi
  rm -f "$out" "$err"
  return 0
}

# checks_summary: prints "N passed, M failed"; returns 1 when M > 0.
checks_summary() {
  echo "${CHECKS_PASSED:-0} passed, ${CHECKS_FAILED:-0} failed"
  [ "${CHECKS_FAILED:-0}" -eq 0 ]
}

# cargo_target_dir: CARGO_TARGET_DIR (relative to the repository, like cargo run from it) or target/.
cargo_target_dir() {
  local dir=${CARGO_TARGET_DIR:-target}
  case $dir in
    /*) printf '%s\n' "$dir" ;;
    *) printf '%s\n' "$EMAIL_OTP_ROOT/$dir" ;;
  esac
}

# debug_binary: builds the service (debug profile; a no-op when it is current) and prints its path,
# so a check never runs a binary older than the source.
debug_binary() {
  ensure_rust || return 1
  (cd "$EMAIL_OTP_ROOT" && quietly cargo build --quiet --locked) >&2 || return 1
  printf '%s\n' "$(cargo_target_dir)/debug/email-otp"
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
