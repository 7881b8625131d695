# shellcheck shell=bash disable=SC2034,SC2153 # sourced: the callers set MODE, NAME etc. and read what this sets
# Shared by bench/run and bench/profile (sourced). Expects ROOT, BENCH, MODE and NAME to be set.
# Everything it starts is recorded in PIDS and stopped by `cleanup` (by PID, never by name).
# Installs, free ports and the cargo target dir come from the repository's scripts/lib/common.sh.
# shellcheck source=scripts/lib/common.sh
. "$ROOT/scripts/lib/common.sh"

say() { [ "$MODE" = smoke ] || printf '%s\n' "$*" >&2; }
die() {
  printf '%s: %s\n' "$NAME" "$*" >&2
  if [ -n "${SVC_LOG:-}" ] && [ -s "$SVC_LOG" ]; then
    printf -- '--- last lines of the service log (%s)\n' "$SVC_LOG" >&2
    tail -n 20 "$SVC_LOG" >&2
  fi
  exit 1
}

CLK_TCK=$(getconf CLK_TCK)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/otp-bench.XXXXXX")
PIDS=()
SVC_PID="" SVC_LOG="" HTTP_PORT="" ADMIN_PORT="" RSS_IDLE=0

stop_pid() { # stop_pid PID [grace seconds]: TERM, wait, then KILL; only processes we started
  local pid=$1 grace=${2:-10} i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 20; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do stop_pid "$pid" 5; done
  if [ -n "${BENCH_KEEP:-}" ]; then echo "$NAME: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ tools (quiet, idempotent)
need() { # need COMMAND PACKAGE: apt-get install PACKAGE only when COMMAND is missing
  ensure_apt "$1" "$2" || die "$1 is missing and installing $2 failed"
}
need_tools() {
  need wrk wrk
  need redis-server redis-server
  need redis-benchmark redis-tools
  need redis-cli redis-tools
  need curl curl
  need python3 python3
  ensure_rust || die "cargo is missing"
}

# ------------------------------------------------------------------ build
# Sets EMAIL_OTP_BIN (unless given), SINK_BIN, BURST_BIN and BIN_COMMIT.
build_all() {
  if [ -z "${EMAIL_OTP_BIN:-}" ]; then
    (cd "$ROOT" && cargo build --release --locked --quiet >"$TMP/build.log" 2>&1) ||
      { cat "$TMP/build.log" >&2; die "cargo build --release failed"; }
    EMAIL_OTP_BIN="$(cargo_target_dir)/release/email-otp"
    BIN_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    local dirty
    dirty=$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock mailer 2>/dev/null | wc -l)
    [ "$dirty" -gt 0 ] && BIN_COMMIT="$BIN_COMMIT+$dirty-uncommitted-files"
  else
    BIN_COMMIT=${BENCH_COMMIT:-"external binary"}
  fi
  [ -x "$EMAIL_OTP_BIN" ] || die "no executable at $EMAIL_OTP_BIN"
  CARGO_TARGET_DIR="$BENCH/target" cargo build --release --locked --quiet \
    --manifest-path "$BENCH/sink/Cargo.toml" >"$TMP/build-sink.log" 2>&1 ||
    { cat "$TMP/build-sink.log" >&2; die "building bench/sink failed"; }
  SINK_BIN="$BENCH/target/release/otp-sink"
  BURST_BIN="$BENCH/target/release/otp-burst"
}

# ------------------------------------------------------------------ /proc readings
ticks() { # utime+stime of a process, in clock ticks (0 when gone)
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  s=${s##*) }
  awk '{print $12 + $13}' <<<"$s"
}
sys_busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; } # user nice system irq softirq steal
rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
child_cpu_ms() { # second line of bash's `times`: the children's user and system time
  awk 'NR==2 { t=0; for (i=1;i<=2;i++) { split($i,a,"m"); sub("s","",a[2]); t+=a[1]*60+a[2] }; printf "%d", t*1000 }' "$1"
}
now_ms() { date +%s%3N; }
compilers() { { pgrep -x 'rustc|cargo|clippy-driver|rustdoc|rust-lld|ld|cc' 2>/dev/null || true; } | wc -l; }
busy_cores() { # CPU cores busy on the whole machine over the next second, e.g. 0.12
  local b0 b1
  b0=$(sys_busy)
  sleep 1
  b1=$(sys_busy)
  awk -v d=$((b1 - b0)) -v t="$CLK_TCK" 'BEGIN { printf "%.2f", d / t }'
}
wait_for_quiet() { # wait_for_quiet SECONDS: let compilations and other load finish before measuring
  local waited=0 busy
  while :; do
    busy=$(busy_cores)
    if [ "$(compilers)" -eq 0 ] && awk -v b="$busy" 'BEGIN { exit !(b < 0.3) }'; then return 0; fi
    if [ "$waited" -ge "$1" ]; then
      say "warning: the machine is not idle ($busy cores busy, $(compilers) rustc/cargo): numbers will be noisy (flagged in the results)"
      return 0
    fi
    [ "$waited" = 0 ] && say "waiting up to $1 s for the machine to be idle ($busy cores busy, $(compilers) rustc/cargo running) ..."
    sleep 4
    waited=$((waited + 5))
  done
}

# ------------------------------------------------------------------ redis and the sink
start_redis() {
  REDIS_PORT=$(free_port)
  mkdir -p "$TMP/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP/redis" \
    --logfile "$TMP/redis.log" --daemonize no --protected-mode no >/dev/null 2>&1 &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  local i
  for ((i = 0; i < 100; i++)); do
    [ "$(rcli ping 2>/dev/null)" = PONG ] && return 0
    kill -0 "$REDIS_PID" 2>/dev/null || { cat "$TMP/redis.log" >&2; die "redis-server did not start"; }
    sleep 0.05
  done
  die "redis-server does not answer on port $REDIS_PORT"
}
rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }

start_sink() {
  "$SINK_BIN" --threads "${BENCH_SINK_THREADS:-2}" >"$TMP/sink.out" 2>&1 &
  SINK_PID=$!
  PIDS+=("$SINK_PID")
  local i
  for ((i = 0; i < 100; i++)); do
    grep -q '^otp-sink ' "$TMP/sink.out" 2>/dev/null && break
    kill -0 "$SINK_PID" 2>/dev/null || { cat "$TMP/sink.out" >&2; die "otp-sink did not start"; }
    sleep 0.05
  done
  SMTP_PORT=$(sed -n 's/^otp-sink smtp=[^ ]*:\([0-9]*\) .*/\1/p' "$TMP/sink.out")
  SINK_HTTP=$(sed -n 's/^otp-sink .* http=\(.*\)$/\1/p' "$TMP/sink.out")
  if [ -z "$SMTP_PORT" ] || [ -z "$SINK_HTTP" ]; then die "otp-sink did not report its ports"; fi
}
sink() { curl -sf --max-time 30 "http://$SINK_HTTP$1"; }
sink_count() { sink /stats | sed -n 's/.*"count":\([0-9]*\).*/\1/p'; }
fresh_state() { rcli flushall >/dev/null; sink /reset >/dev/null; }

# ------------------------------------------------------------------ the service
INHERITED_OTP=$(env | sed -n 's/^\(OTP_[A-Z0-9_]*\)=.*/\1/p' | sort | paste -sd, -)
# start_service MODE LOGNAME [VAR=VALUE ...]; SVC_WRAP (an array) may hold a command to run it under.
start_service() {
  local mode=$1 name=$2 i code="" tries=${SVC_START_TRIES:-300}
  shift 2
  read -r HTTP_PORT ADMIN_PORT <<<"$(free_ports 2)"
  SVC_LOG="$TMP/service-$name.log"
  # The caller's OTP_* stay in the environment; the bench's own settings (ports, Redis, sink) win.
  # Everything else is the service's default, log.level (info) included.
  env OTP_REDIS__URL="redis://127.0.0.1:$REDIS_PORT" \
    OTP_OTP__HMAC_KEY="bench-hmac-key-0123456789abcdef0123456789abcdef" \
    OTP_HTTP__LISTEN="127.0.0.1:$HTTP_PORT" OTP_ADMIN__LISTEN="127.0.0.1:$ADMIN_PORT" \
    OTP_SMTP__HOST=127.0.0.1 OTP_SMTP__PORT="$SMTP_PORT" OTP_SMTP__SECURITY=none \
    OTP_MAIL__TRANSPORT=smtp OTP_MAIL__TEMPLATE_DIR="$ROOT/mailer" \
    "$@" \
    "${SVC_WRAP[@]}" "$EMAIL_OTP_BIN" "$mode" >"$SVC_LOG" 2>&1 &
  SVC_PID=$!
  PIDS+=("$SVC_PID")
  for ((i = 0; i < tries; i++)); do
    kill -0 "$SVC_PID" 2>/dev/null || die "email-otp $mode exited at start-up"
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$ADMIN_PORT/readyz" || true)
    [ "$code" = 200 ] && break
    sleep 0.05
  done
  [ "$code" = 200 ] || die "email-otp $mode: /readyz did not answer 200 (last: $code)"
  if [ "$mode" != worker ]; then
    for ((i = 0; i < tries; i++)); do
      code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$HTTP_PORT/openapi.json" || true)
      [ "$code" = 200 ] && break
      sleep 0.05
    done
    [ "$code" = 200 ] || die "email-otp $mode: the API port does not answer"
  fi
  sleep 1 # settle before reading the idle RSS
  RSS_IDLE=$(rss_kb "$SVC_PID")
}
SVC_WRAP=()
stop_service() {
  [ -n "$SVC_PID" ] && stop_pid "$SVC_PID" 20
  SVC_PID=""
}
counters() { # the service's *_total counters as a JSON object (labels kept in the key, no quotes)
  { curl -sf --max-time 5 "http://127.0.0.1:$ADMIN_PORT/metrics" 2>/dev/null || true; } |
    awk '/^email_otp_[a-z_]+_total[{ ]/ { k=$1; v=$NF; gsub(/"/,"",k); sub(/^email_otp_/,"",k);
         printf "%s\"%s\":%s", s, k, v; s="," } BEGIN { printf "{" } END { printf "}" }'
}

# ------------------------------------------------------------------ load generators
wrk_run() { # wrk_run SCRIPT SECONDS ARGS...
  local script=$1 secs=$2
  shift 2
  wrk -t"$THREADS" -c"$CONNS" -d"${secs}s" --timeout 5s -s "$BENCH/$script" \
    "http://127.0.0.1:$HTTP_PORT" -- "$@"
}
burst() { # burst PREFIX COUNT [otp-burst options...]
  local prefix=$1 count=$2
  shift 2
  "$BURST_BIN" --target "127.0.0.1:$HTTP_PORT" --count "$count" --connections "$CONNS" \
    --threads "$THREADS" --prefix "$prefix" "$@"
}
