#!/bin/sh
# lbsync-drain.sh: drain one server on every backend of the local HAProxy
# through its runtime API, then wait until its sessions reach zero or a
# deadline passes. Cloud-neutral: any Run Command, agent or ssh can carry it.
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
# Needs: POSIX sh, socat, awk, date (GNU, for milliseconds), sleep.
set -u

socket=/run/haproxy/admin.sock
master=
server=
timeout=30
interval=0.2

now_ms() { date +%s%3N; }
started=$(now_ms)

# Every value printed below is validated or produced here, so plain printf
# builds valid JSON.
emit() { # result backends sessions exit [message]
  ms=$(( $(now_ms) - started ))
  if [ -n "${5:-}" ]; then
    printf '{"lbsyncDrain":1,"result":"%s","server":"%s","backends":%s,"sessions":%s,"ms":%s,"message":"%s"}\n' \
      "$1" "$server" "$2" "$3" "$ms" "$5"
  else
    printf '{"lbsyncDrain":1,"result":"%s","server":"%s","backends":%s,"sessions":%s,"ms":%s}\n' \
      "$1" "$server" "$2" "$3" "$ms"
  fi
  exit "$4"
}

usage() { server=; emit failed 0 0 2 "$1"; }

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

case "$server" in
  '' | *[!A-Za-z0-9._:-]*) usage "--server must be letters, digits, . _ : -" ;;
esac
case "$timeout" in '' | *[!0-9]*) usage "--timeout must be whole seconds" ;; esac
case "$interval" in '' | *[!0-9.]*) usage "--interval must be a number of seconds" ;; esac

cli() { printf '%s\n' "$1" | socat -t 5 stdio "UNIX-CONNECT:$socket" 2>/dev/null; }
master_cli() { printf '%s\n' "$1" | socat -t 5 stdio "UNIX-CONNECT:$master" 2>/dev/null; }

# show stat is CSV: pxname,svname,qcur,qmax,scur,...
stat=$(cli "show stat") || emit failed 0 0 5 "runtime socket unusable"
case "$stat" in '# pxname'*) ;; *) emit failed 0 0 5 "runtime socket gave no stats" ;; esac

backends=$(printf '%s\n' "$stat" | awk -F, -v s="$server" '$2 == s && $1 != "" { print $1 }')
count=0
for be in $backends; do
  count=$((count + 1))
  answer=$(cli "set server $be/$server state drain") || emit failed "$count" 0 5 "set server failed"
  [ -z "$(printf '%s' "$answer" | tr -d '[:space:]')" ] || emit failed "$count" 0 5 "set server refused"
done
[ "$count" -gt 0 ] || emit absent 0 0 0

# Sessions of the server in the current worker plus, through the master
# CLI, in old workers still finishing connections after a reload.
# Prints -1 when the socket gives no stats (e.g. mid-reload): unknown is not zero.
sessions() {
  out=$(cli "show stat")
  case "$out" in '# pxname'*) ;; *) echo -1; return ;; esac
  n=$(printf '%s\n' "$out" | awk -F, -v s="$server" '$2 == s { t += $5 } END { print t + 0 }')
  if [ -n "$master" ] && [ -S "$master" ]; then
    for pid in $(master_cli "show proc" | awk '/^# old workers/ { o = 1; next } /^#/ { o = 0 } o && $1 ~ /^[0-9]+$/ { print $1 }'); do
      m=$(master_cli "@!$pid show stat" | awk -F, -v s="$server" '$2 == s { t += $5 } END { print t + 0 }')
      n=$((n + m))
    done
  fi
  echo "$n"
}

deadline=$(( started + timeout * 1000 ))
while :; do
  left=$(sessions)
  [ "$left" -eq 0 ] && emit drained "$count" 0 0
  [ "$(now_ms)" -ge "$deadline" ] && emit timeout "$count" "$left" 1
  sleep "$interval"
done
