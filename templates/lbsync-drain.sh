#!/bin/sh
# lbsync-drain.sh: drain one server on every backend of the local HAProxy
# through its runtime API, then wait until its sessions reach zero or a
# deadline passes. Cloud-neutral: any Run Command, agent or ssh can carry it
# (in the self-contained form core/lb-scripts.ts builds; the arguments and
# the result line are core/apply-contract.ts drainArgs / parseDrainResult).
#
# Usage:
#   lbsync-drain.sh --server NAME [--socket PATH] [--master-socket PATH]
#                   [--timeout SECONDS] [--interval SECONDS]
#
#   --socket         runtime API socket (stats socket, level admin);
#                    default /run/haproxy/admin.sock
#   --master-socket  master CLI socket; when it exists, sessions still held by
#                    old workers (left over from a reload) are counted too
#   --timeout        seconds to wait for sessions to reach 0 (default 30)
#   --interval       seconds between polls (default 0.2)
#
# Output: exactly one JSON line, last on stdout:
#   {"lbsyncDrain":1,"result":"drained","server":"i-0abc","backends":2,"sessions":0,"ms":812}
# result: drained (sessions reached 0), timeout (deadline passed with sessions
# left), absent (no backend has the server), failed (socket unusable).
# Exit codes: 0 drained|absent, 1 timeout, 2 bad usage, 5 failed.
#
# Needs: POSIX sh, socat, awk, sleep.
set -u
LC_ALL=C
export LC_ALL
lb_prog=lbsync-drain

# >>> lbsync-lib: core/lb-scripts.ts inlines templates/lib/lbsync-lib.sh here
. "${0%/*}/lib/lbsync-lib.sh"
# <<< lbsync-lib

socket=/run/haproxy/admin.sock
master=
server=
timeout=30
interval=0.2

lb_now_ms
started=$lb_ms
tmp=

cleanup() {
  if [ -n "$tmp" ]; then rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

emit() { # result backends sessions exit [message]
  lb_now_ms
  lb_json_start
  lb_json_num lbsyncDrain 1
  lb_json_str result "$1"
  lb_json_str server "$server"
  lb_json_num backends "$2"
  lb_json_num sessions "$3"
  lb_json_num ms $((lb_ms - started))
  if [ -n "${5:-}" ]; then lb_json_str message "$5"; fi
  lb_json_print
  exit "$4"
}

usage() {
  server=
  emit failed 0 0 2 "$1"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --socket) [ $# -ge 2 ] || usage "--socket needs a value"; socket=$2; shift 2 ;;
    --master-socket) [ $# -ge 2 ] || usage "--master-socket needs a value"; master=$2; shift 2 ;;
    --server) [ $# -ge 2 ] || usage "--server needs a value"; server=$2; shift 2 ;;
    --timeout) [ $# -ge 2 ] || usage "--timeout needs a value"; timeout=$2; shift 2 ;;
    --interval) [ $# -ge 2 ] || usage "--interval needs a value"; interval=$2; shift 2 ;;
    *) usage "unknown argument" ;;
  esac
done

lb_is_name "$server" || usage "--server must be letters, digits, . _ : -"
case "$timeout" in '' | *[!0-9]*) usage "--timeout must be whole seconds" ;; esac
case "$interval" in '' | *[!0-9.]*) usage "--interval must be a number of seconds" ;; esac
lb_is_plain_path "$socket" || usage "--socket must be a plain path"
if [ -n "$master" ]; then lb_is_plain_path "$master" || usage "--master-socket must be a plain path"; fi

# Named after our pid so a later drain can tell a killed one's leftovers.
lb_sweep "${TMPDIR:-/tmp}" lbsync-drain
tmp=${TMPDIR:-/tmp}/lbsync-drain.$$
rm -rf "$tmp"
mkdir -m 700 "$tmp" || emit failed 0 0 5 "cannot create a temp dir"

# show stat is CSV: pxname,svname,qcur,qmax,scur,...
lb_cli "$socket" >"$tmp/stat" <<'LB_EOF' || emit failed 0 0 5 "runtime socket unusable"
show stat
LB_EOF
IFS= read -r first <"$tmp/stat" || first=
case "$first" in '# pxname'*) ;; *) emit failed 0 0 5 "runtime socket gave no stats" ;; esac

# One batch: every backend that has the server is set to drain.
awk -F, -v s="$server" '
  BEGIN { print "prompt" }
  $2 == s && $1 != "" { print "set server " $1 "/" s " state drain"; n++ }
  END { print "quit"; print n + 0 > "/dev/stderr" }' "$tmp/stat" >"$tmp/cmds" 2>"$tmp/count"
IFS= read -r count <"$tmp/count" || count=0
lb_is_uint "$count" || count=0
[ "$count" -gt 0 ] || emit absent 0 0 0
lb_cli "$socket" <"$tmp/cmds" >"$tmp/answers" || emit failed "$count" 0 5 "set server failed"
# In prompt mode each answer follows a "> "; a successful drain answers nothing.
refused=$(awk '{ sub(/^> /, "") } $0 != "" { print; exit }' "$tmp/answers")
[ -z "$refused" ] || emit failed "$count" 0 5 "set server refused: $refused"

# Sessions of the server in the current worker plus, through the master
# CLI, in old workers still finishing connections after a reload.
# Sets left; -1 when the socket gives no stats (e.g. mid-reload): unknown is not zero.
sessions() {
  left=-1
  lb_cli "$socket" >"$tmp/stat" <<'LB_EOF' || return 0
show stat
LB_EOF
  IFS= read -r first <"$tmp/stat" || return 0
  case "$first" in '# pxname'*) ;; *) return 0 ;; esac
  if [ -n "$master" ] && [ -S "$master" ]; then
    lb_cli "$master" >"$tmp/proc" <<'LB_EOF' || :
show proc
LB_EOF
    # One batch through the master CLI: `@!<pid> show stat` per old worker.
    awk '/^# old workers/ { o = 1; next } /^#/ { o = 0 } o && $1 ~ /^[0-9]+$/ { print "@!" $1 " show stat" }' \
      "$tmp/proc" >"$tmp/old"
    if [ -s "$tmp/old" ]; then
      while IFS= read -r cmd; do
        lb_cli "$master" >>"$tmp/stat" <<LB_EOF || :
$cmd
LB_EOF
      done <"$tmp/old"
    fi
  fi
  left=$(awk -F, -v s="$server" '$2 == s { t += $5 } END { print t + 0 }' "$tmp/stat")
}

deadline=$((started + timeout * 1000))
while :; do
  sessions
  [ "$left" = 0 ] && emit drained "$count" 0 0
  lb_now_ms
  [ "$lb_ms" -ge "$deadline" ] && emit timeout "$count" "$left" 1
  lb_sleep "$interval"
done
