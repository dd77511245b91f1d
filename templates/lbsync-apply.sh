#!/bin/sh
# lbsync-apply.sh - the LB-side half of lbsync's apply contract (DESIGN.md,
# "The apply contract"). Every transport (SSM Run Command, Azure Run Command,
# the GCP agent, a local subprocess) runs this same file on the LB VM.
#
# It reads a payload (made by encodePayload in core/payload.ts):
#   lbsync=1
#   generation=<digits>
#   sha256=<64 lowercase hex>
#   servers=<digits>
#   ---
#   <one base64 line: the gzipped HAProxy config>
# and then: 1 decodes it and verifies the sha256; 2 takes flock on
# $state_dir/lock; 3 refuses an older generation (stale); 4 skips a config
# equal to the live one (unchanged, no reload); 5 stages the new file beside
# the live one; 6 checks it with `haproxy -c`; 7 backs the live file up and
# renames the staged file over it; 8 reloads HAProxy and verifies the reload
# took; 9 on failure restores the backup and reloads again; 10 records the
# generation and sha256.
#
# Usage: lbsync-apply.sh [--config PATH] [--state-dir DIR]
#          [--reload auto|systemd|master-socket] [--master-socket PATH]
#          [--haproxy BIN] [--lock-timeout S] [--reload-timeout S]
#          [--payload FILE|-] [--status] [--help]
#
# Output: diagnostics go to stderr; the LAST line on stdout is exactly one
# compact JSON object (kept under ~1.5 KB because Azure Run Command returns
# only the last 4,096 bytes of output):
#   {"lbsync":1,"result":"applied","generation":N,"sha256":"...","servers":N,"ms":N,"message":"..."}
# generation/sha256/servers describe the payload once it parsed (zero/empty
# before that); for --status they describe the live config.
#
# Exit codes:
#   0  applied | unchanged | stale | status
#   2  invalid      bad payload, bad usage or sha256 mismatch; nothing changed
#   3  rejected     `haproxy -c` refused the config; live config untouched
#   4  rolled-back  the reload failed; the previous config is restored and serving
#   5  failed       the reload failed and so did the rollback (or no backup existed)
#   6  busy         another apply held the lock past --lock-timeout
#
# Needs only POSIX sh, coreutils, gzip, base64, flock and haproxy, plus socat
# for master-socket reloads. It never evals input: header values are matched
# against strict patterns and every variable is quoted.

set -u
umask 022

PATH="${PATH:-/usr/bin:/bin}:/usr/sbin:/sbin:/usr/local/sbin"
export PATH
LC_ALL=C
export LC_ALL

config=/etc/haproxy/haproxy.cfg
state_dir=/var/lib/lbsync
reload_mode=auto
master_socket=/run/haproxy-master.sock
haproxy_bin=
lock_timeout=30
reload_timeout=30
payload_src=-
mode=apply

# Payloads and decoded configs larger than this are refused (a gzip bomb
# must not fill the disk).
max_bytes=67108864

gen=0
sha=
servers=0
tmp=
staged_created=0

now_ms() {
  _t=$(date +%s%3N 2>/dev/null)
  case $_t in
    '' | *[!0-9]*) _t=$(($(date +%s) * 1000)) ;;
  esac
  printf '%s' "$_t"
}
start_ms=$(now_ms)

log() {
  printf 'lbsync-apply: %s\n' "$*" >&2
}

# Escape a string for a JSON string literal. Control characters are folded
# to spaces first (tr), so only backslash and double quote need escaping.
json_escape() {
  _s=$(printf '%s' "$1" | tr '\000-\037' ' ')
  _o=
  while :; do
    case $_s in
      *[\\\"]*) ;;
      *) break ;;
    esac
    _p=${_s%%[\\\"]*}
    _s=${_s#"$_p"}
    _c=${_s%"${_s#?}"}
    _s=${_s#?}
    _o="$_o$_p\\$_c"
  done
  printf '%s' "$_o$_s"
}

# Print the result line and exit with the documented code.
finish() {
  _result=$1
  _msg=${2:-}
  case $_result in
    applied | unchanged | stale | status) _code=0 ;;
    invalid) _code=2 ;;
    rejected) _code=3 ;;
    rolled-back) _code=4 ;;
    failed) _code=5 ;;
    busy) _code=6 ;;
    *) _code=5 ;;
  esac
  # Keep the whole line well under the transports' output limits even if
  # the message is all quotes (escaping doubles it).
  _msg=$(printf '%s' "$_msg" | head -c 1024)
  _esc=$(json_escape "$_msg")
  if [ "${#_esc}" -gt 1200 ]; then
    _esc=$(json_escape "$(printf '%s' "$_msg" | head -c 600)")
  fi
  _ms=$(($(now_ms) - start_ms))
  [ "$_ms" -ge 0 ] 2>/dev/null || _ms=0
  if [ -n "$_msg" ]; then log "$_result: $_msg"; fi
  printf '{"lbsync":1,"result":"%s","generation":%s,"sha256":"%s","servers":%s,"ms":%s,"message":"%s"}\n' \
    "$_result" "$gen" "$sha" "$servers" "$_ms" "$_esc"
  exit "$_code"
}

cleanup() {
  if [ -n "$tmp" ]; then rm -rf "$tmp"; fi
  # The staged file is ours only while we hold the lock (step 5 onwards).
  if [ "$staged_created" = 1 ]; then rm -f "$config.lbsync-staged"; fi
}
trap cleanup EXIT
# Turn signals into a normal exit so the EXIT trap cleans up.
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

usage() {
  cat <<'EOF'
Usage: lbsync-apply.sh [options] [< payload]
  --config PATH          live HAProxy config (default /etc/haproxy/haproxy.cfg)
  --state-dir DIR        lock and recorded generation/sha256 (default /var/lib/lbsync)
  --reload MODE          auto | systemd | master-socket (default auto)
  --master-socket PATH   HAProxy master CLI socket (default /run/haproxy-master.sock)
  --haproxy BIN          haproxy binary (default: PATH, then /usr/sbin/haproxy)
  --lock-timeout S       seconds to wait for the lock (default 30)
  --reload-timeout S     seconds to wait for a reload to take (default 30)
  --payload FILE|-       read the payload from FILE or stdin (default -)
  --status               print the live state as a "status" result; change nothing
  --help                 this text
Exit codes: 0 applied|unchanged|stale|status, 2 invalid, 3 rejected,
4 rolled-back, 5 failed, 6 busy. The last stdout line is the JSON result.
EOF
}

# digits only, no leading zero (sh arithmetic would read 010 as octal), at
# most 16 digits (every JS safe integer fits; sh arithmetic never overflows).
is_uint() {
  case $1 in
    '' | *[!0-9]* | 0?*) return 1 ;;
  esac
  [ "${#1}" -le 16 ]
}

is_sha() {
  case $1 in
    *[!0-9a-f]*) return 1 ;;
  esac
  [ "${#1}" -eq 64 ]
}

# Paths reach socat's address syntax, where , : ! and quotes are special.
is_plain_path() {
  case $1 in
    '' | *[!A-Za-z0-9._/@+-]*) return 1 ;;
  esac
  return 0
}

need_value() {
  if [ "$2" -lt 2 ]; then finish invalid "option $1 needs a value"; fi
}

while [ $# -gt 0 ]; do
  case $1 in
    --config) need_value "$1" $#; config=$2; shift 2 ;;
    --state-dir) need_value "$1" $#; state_dir=$2; shift 2 ;;
    --reload) need_value "$1" $#; reload_mode=$2; shift 2 ;;
    --master-socket) need_value "$1" $#; master_socket=$2; shift 2 ;;
    --haproxy) need_value "$1" $#; haproxy_bin=$2; shift 2 ;;
    --lock-timeout) need_value "$1" $#; lock_timeout=$2; shift 2 ;;
    --reload-timeout) need_value "$1" $#; reload_timeout=$2; shift 2 ;;
    --payload) need_value "$1" $#; payload_src=$2; shift 2 ;;
    --status) mode=status; shift ;;
    --help | -h) usage; exit 0 ;;
    *) finish invalid "unknown argument: $1" ;;
  esac
done

case $reload_mode in
  auto | systemd | master-socket) ;;
  *) finish invalid "--reload must be auto, systemd or master-socket" ;;
esac
is_uint "$lock_timeout" || finish invalid "--lock-timeout must be a whole number of seconds"
is_uint "$reload_timeout" || finish invalid "--reload-timeout must be a whole number of seconds"
[ -n "$config" ] || finish invalid "--config must not be empty"
[ -n "$state_dir" ] || finish invalid "--state-dir must not be empty"
is_plain_path "$master_socket" || finish invalid "--master-socket must be a plain path ([A-Za-z0-9._/@+-])"

if [ -z "$haproxy_bin" ]; then
  haproxy_bin=$(command -v haproxy 2>/dev/null || :)
  for _c in /usr/sbin/haproxy /usr/local/sbin/haproxy; do
    if [ -z "$haproxy_bin" ] && [ -x "$_c" ]; then haproxy_bin=$_c; fi
  done
fi

# First word of each line is "server" (read strips indentation).
count_servers() {
  _n=0
  if [ -f "$1" ]; then
    while read -r _first _rest || [ -n "${_first:-}" ]; do
      if [ "$_first" = server ]; then _n=$((_n + 1)); fi
      _first=
    done <"$1"
  fi
  printf '%s' "$_n"
}

file_sha() {
  if [ -f "$1" ]; then
    _h=$(sha256sum <"$1") || return 1
    printf '%s' "${_h%% *}"
  fi
}

# Recorded generation; a corrupt file counts as 0 rather than blocking every
# future apply, and says so.
recorded_generation() {
  _g=
  if [ -f "$state_dir/generation" ]; then
    IFS= read -r _g <"$state_dir/generation" || :
    if ! is_uint "$_g"; then
      log "ignoring corrupt $state_dir/generation"
      _g=0
    fi
  fi
  printf '%s' "${_g:-0}"
}

recorded_sha() {
  _r=
  if [ -f "$state_dir/sha256" ]; then
    IFS= read -r _r <"$state_dir/sha256" || :
    is_sha "$_r" || _r=
  fi
  printf '%s' "$_r"
}

if [ "$mode" = status ]; then
  gen=$(recorded_generation)
  sha=$(file_sha "$config") || finish failed "cannot read $config"
  servers=$(count_servers "$config")
  if [ -f "$config" ]; then finish status ""; fi
  finish status "no live config at $config"
fi

# ---- 1. decode and verify ---------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lbsync-apply.XXXXXX") || finish failed "cannot create a temp dir"

if [ "$payload_src" = - ]; then
  head -c "$((max_bytes + 1))" >"$tmp/payload" || finish invalid "cannot read the payload from stdin"
else
  [ -f "$payload_src" ] || finish invalid "payload file not found: $payload_src"
  head -c "$((max_bytes + 1))" <"$payload_src" >"$tmp/payload" ||
    finish invalid "cannot read the payload file"
fi
_size=$(wc -c <"$tmp/payload")
[ "$_size" -le "$max_bytes" ] || finish invalid "payload larger than $max_bytes bytes"
[ "$_size" -gt 0 ] || finish invalid "empty payload"

head -n 5 <"$tmp/payload" >"$tmp/header"
tail -n +6 <"$tmp/payload" >"$tmp/body"

# The header is exactly five lines in a fixed order; values are only ever
# compared against patterns, never evaluated.
_i=0
while IFS= read -r _line; do
  _i=$((_i + 1))
  case $_i in
    1) [ "$_line" = lbsync=1 ] || finish invalid "unsupported payload format (line 1 must be lbsync=1)" ;;
    2)
      case $_line in generation=*) ;; *) finish invalid "line 2 must be generation=<digits>" ;; esac
      _v=${_line#generation=}
      is_uint "$_v" || finish invalid "generation must be digits"
      _gen=$_v
      ;;
    3)
      case $_line in sha256=*) ;; *) finish invalid "line 3 must be sha256=<64 hex>" ;; esac
      _v=${_line#sha256=}
      is_sha "$_v" || finish invalid "sha256 must be 64 lowercase hex digits"
      _sha=$_v
      ;;
    4)
      case $_line in servers=*) ;; *) finish invalid "line 4 must be servers=<digits>" ;; esac
      _v=${_line#servers=}
      is_uint "$_v" || finish invalid "servers must be digits"
      _servers=$_v
      ;;
    5) [ "$_line" = --- ] || finish invalid "line 5 must be ---" ;;
  esac
done <"$tmp/header"
[ "$_i" -eq 5 ] || finish invalid "truncated payload header"
gen=$_gen
sha=$_sha
servers=$_servers

# Body: one line of base64 and nothing else.
[ "$(wc -l <"$tmp/body")" -le 1 ] || finish invalid "payload body must be a single base64 line"
[ -s "$tmp/body" ] || finish invalid "payload body is empty"
[ "$(tr -d 'A-Za-z0-9+/=\n' <"$tmp/body" | head -c 1 | wc -c)" -eq 0 ] ||
  finish invalid "payload body is not base64"
base64 -d <"$tmp/body" >"$tmp/config.gz" 2>/dev/null || finish invalid "payload body is not valid base64"
gzip -t <"$tmp/config.gz" 2>/dev/null || finish invalid "payload body is not valid gzip"
gzip -dc <"$tmp/config.gz" | head -c "$((max_bytes + 1))" >"$tmp/config"
[ "$(wc -c <"$tmp/config")" -le "$max_bytes" ] || finish invalid "decoded config larger than $max_bytes bytes"
_actual=$(file_sha "$tmp/config")
[ "$_actual" = "$sha" ] || finish invalid "sha256 mismatch: payload says $sha, content is $_actual"

# ---- 2. lock -------------------------------------------------------------------
mkdir -p "$state_dir" || finish failed "cannot create $state_dir"
# `command` keeps a failed redirection from killing the shell (exec is a
# special builtin) before it can print a result line.
command exec 9>>"$state_dir/lock" || finish failed "cannot open $state_dir/lock"
if [ "$lock_timeout" -eq 0 ]; then
  flock -n 9 || finish busy "another apply holds $state_dir/lock"
else
  flock -w "$lock_timeout" 9 || finish busy "another apply held $state_dir/lock for ${lock_timeout}s"
fi

record() {
  printf '%s\n' "$gen" >"$state_dir/generation.tmp" &&
    mv -f "$state_dir/generation.tmp" "$state_dir/generation" &&
    printf '%s\n' "$sha" >"$state_dir/sha256.tmp" &&
    mv -f "$state_dir/sha256.tmp" "$state_dir/sha256"
}

# ---- 3. newer wins -------------------------------------------------------------
_recorded=$(recorded_generation)
if [ "$gen" -lt "$_recorded" ]; then
  finish stale "generation $gen is older than the recorded $_recorded; nothing changed"
fi

# ---- 4. idempotent -----------------------------------------------------------
# The live file alone is not proof HAProxy runs it: a run killed between the
# rename and the reload leaves a new file and an old process. Such a run never
# recorded its sha, so when a recorded sha exists it must match too.
_live_sha=$(file_sha "$config") || finish failed "cannot read $config"
_rec_sha=$(recorded_sha)
if [ "$_live_sha" = "$sha" ] && { [ -z "$_rec_sha" ] || [ "$_rec_sha" = "$sha" ]; }; then
  record || finish failed "cannot record the generation in $state_dir"
  finish unchanged ""
fi

[ -n "$haproxy_bin" ] && [ -x "$haproxy_bin" ] || command -v "$haproxy_bin" >/dev/null 2>&1 ||
  finish failed "haproxy not found (use --haproxy)"

# ---- 5. stage beside the live file (same filesystem: the rename is atomic) ---
staged="$config.lbsync-staged"
backup="$config.lbsync-backup"
rm -f "$staged"
staged_created=1
if [ -f "$config" ]; then
  # cp -p first so the new file keeps the live file's owner and mode.
  cp -p "$config" "$staged" && cat "$tmp/config" >"$staged" || finish failed "cannot write $staged"
else
  cp "$tmp/config" "$staged" || finish failed "cannot write $staged"
fi

# ---- 6. check ------------------------------------------------------------------
# Keep haproxy's ALERT lines (or everything, if it printed none), one line.
alerts_of() {
  _a=
  _all=
  while IFS= read -r _l || [ -n "$_l" ]; do
    case $_l in
      *'[ALERT]'*) _a="$_a${_a:+; }$_l" ;;
    esac
    _all="$_all${_all:+; }$_l"
    _l=
  done <"$1"
  printf '%s' "${_a:-$_all}" | tr -s ' \t' '  ' | head -c 1024
}

if ! "$haproxy_bin" -c -f "$staged" >"$tmp/check.out" 2>&1; then
  _why=$(alerts_of "$tmp/check.out")
  rm -f "$staged"
  finish rejected "haproxy -c refused the config: ${_why:-no output}"
fi

# ---- 8 (helpers). reload and verify ----------------------------------------
have_socat() {
  command -v socat >/dev/null 2>&1
}

master_cmd() {
  printf '%s\n' "$1" | timeout 10 socat -t 2 -T 5 - "UNIX-CONNECT:$master_socket" 2>/dev/null
}

# Sets proc_reloads, proc_failed and proc_fresh (workers that have not seen a
# reload yet, i.e. forked by the latest one) from `show proc`.
read_proc() {
  proc_reloads=
  proc_failed=
  proc_fresh=0
  _out=$(master_cmd 'show proc') || return 1
  while read -r _pid _type _rel _f1 _f2 _rest; do
    case $_type in
      master)
        proc_reloads=$_rel
        [ "$_f1" = '[failed:' ] && proc_failed=${_f2%]}
        ;;
      worker)
        [ "$_rel" = 0 ] && proc_fresh=$((proc_fresh + 1))
        ;;
    esac
  done <<EOF
$_out
EOF
  case $proc_reloads in '' | *[!0-9]*) return 1 ;; esac
  case $proc_failed in '' | *[!0-9]*) proc_failed=0 ;; esac
  return 0
}

# Sets before_reloads/before_failed; fails when the master does not answer.
proc_before() {
  read_proc || return 1
  before_reloads=$proc_reloads
  before_failed=$proc_failed
}

# Poll `show proc` until the master's reload counter rises. The master
# re-execs on reload, so every poll is a fresh connection and refusals while
# it restarts are expected.
verify_reload() {
  _deadline=$(($(now_ms) + reload_timeout * 1000))
  while [ "$(now_ms)" -lt "$_deadline" ]; do
    if read_proc && [ "$proc_reloads" -gt "$before_reloads" ]; then
      if [ "$proc_failed" -gt "$before_failed" ]; then
        # The 2.6 master CLI has no startup logs to quote; the config passed
        # -c, so the cause is at startup (ports in use, FD limits, certs).
        reload_error="HAProxy reported a failed reload (failed: $proc_failed); see HAProxy's log for the startup error (ports in use, FD limits)"
        return 1
      fi
      if [ "$proc_fresh" -gt 0 ]; then return 0; fi
    fi
    sleep 0.1
  done
  reload_error="the reload did not take within ${reload_timeout}s"
  return 1
}

use_master=0
case $reload_mode in
  master-socket) use_master=1 ;;
  auto) if [ -S "$master_socket" ] && have_socat; then use_master=1; fi ;;
esac

# One reload, verified. Sets reload_error on failure.
do_reload() {
  reload_error=
  if [ "$use_master" = 1 ]; then
    proc_before || {
      reload_error="HAProxy master socket $master_socket does not answer"
      return 1
    }
    master_cmd reload >/dev/null || :
    verify_reload
    return $?
  fi
  # systemd: verify through the master socket too when there is one, since
  # `systemctl reload` returns once the signal is sent, not once it took.
  _verify=0
  if [ -S "$master_socket" ] && have_socat && proc_before; then _verify=1; fi
  if ! timeout "$reload_timeout" systemctl reload haproxy >"$tmp/systemctl.out" 2>&1; then
    reload_error="systemctl reload haproxy failed: $(alerts_of "$tmp/systemctl.out")"
    return 1
  fi
  if ! systemctl is-active haproxy >/dev/null 2>&1; then
    reload_error="haproxy is not active after systemctl reload"
    return 1
  fi
  if [ "$_verify" = 1 ]; then verify_reload; return $?; fi
  return 0
}

# In master-socket mode, make sure someone is there to reload before touching
# the live file: an unreachable master is a failure with nothing changed.
if [ "$use_master" = 1 ]; then
  have_socat || finish failed "socat is required for --reload master-socket"
  if ! read_proc; then
    rm -f "$staged"
    finish failed "HAProxy master socket $master_socket does not answer; nothing changed"
  fi
fi

# ---- 7. swap ---------------------------------------------------------------------
# From here to the end, an interruption would leave file and process out of
# step, so signals wait; the section is bounded by two reload timeouts.
trap '' INT TERM HUP
had_backup=0
if [ -f "$config" ]; then
  cp -p "$config" "$backup.tmp" && mv -f "$backup.tmp" "$backup" ||
    finish failed "cannot back up $config; nothing changed"
  had_backup=1
fi
mv -f "$staged" "$config" || finish failed "cannot rename $staged over $config; nothing changed"
staged_created=0

# ---- 8/9. reload, roll back on failure -----------------------------------------
if do_reload; then
  record || finish failed "applied, but cannot record the generation in $state_dir"
  finish applied ""
fi
first_error=$reload_error
if [ "$had_backup" = 0 ]; then
  finish failed "reload failed and there is no previous config to restore: $first_error"
fi
cp -p "$backup" "$staged" && mv -f "$staged" "$config" ||
  finish failed "reload failed ($first_error) and restoring $backup failed"
if do_reload; then
  finish rolled-back "reload failed, previous config restored: $first_error"
fi
finish failed "reload failed ($first_error); previous config restored but its reload failed too: $reload_error"
