#!/bin/sh
# lbsync-apply.sh - the LB-side half of lbsync's apply contract (DESIGN.md,
# "The apply contract"; core/apply-contract.ts is the TypeScript side). Every
# transport (SSM Run Command, Azure Run Command, the GCP agent, a local
# subprocess) runs this same file on the LB VM, in the self-contained form
# core/lb-scripts.ts builds (templates/lib/lbsync-lib.sh inlined).
#
# Payload (core/payload.ts encodePayload), a header in a fixed order:
#   v1: lbsync=1, generation=<digits>, sha256=<64 hex>, servers=<digits>, ---
#   v2: lbsync=2, generation=, sha256=, servers=,
#       max-removal-percent=<0-100, up to 2 decimals | none>, force=<0|1>, ---
# then one base64 line: the gzipped HAProxy config.
#
# Steps: 1 decode and verify the sha256; 2 take flock on $state_dir/lock and
# sweep temp files of applies that died; 3 refuse an older generation
# (stale); 4 skip a config equal to the live one (unchanged, no reload);
# 5 compare the new config with the live one and with HAProxy's runtime
# state, and (v2) refuse when more than max-removal-percent of the live
# workers would leave the serving set (refused, nothing changed); 6 check
# the new file with `haproxy -c` (in the background from step 5 on);
# 7 back the live file up and rename the new file over it (same filesystem:
# atomic); 8 apply it: through the runtime API when only servers changed,
# else by a verified reload; 9 on a failed reload restore the backup and
# reload again; 10 record the generation and sha256.
#
# The runtime path (no reload). When the two configs differ only in the
# `server` lines of backend/listen sections (comment lines ignored), the
# change goes through the runtime API socket (--runtime-socket):
#   added      add server B/S <addr> <options>, enable health (if checked),
#              enable server
#   drained    set server B/S weight 0 (exactly what the file's `weight 0`
#              means, so a later reload gives the same state)
#   removed    set server B/S state drain; wait until its sessions reach 0
#              (at most --removal-timeout s); state maint; del server
#   changed    set server B/S addr/port, weight, state ready
# then `show servers state` must equal the new file (names, addresses,
# weights, ids, no maintenance or drain flag, checks enabled where
# configured). The file is still checked with `haproxy -c` and written as the
# live file first, so a later reload or a reboot comes back to exactly this
# state. If any runtime step fails, the apply reloads instead (with rollback
# as below) and its message says why.
#
# HAProxy 2.6 limits and how lbsync handles them:
#   - Dynamic servers ignore `default-server`: the add command carries the
#     defaults' and the backend's default-server options followed by the
#     server's own (later options win, as in the config file).
#   - They start in maintenance with checks disabled: enable health, then
#     enable server.
#   - `add server` needs a dynamic algorithm. static-rr, and the hash
#     algorithms (source, uri, url_param, hdr, rdp-cookie) with the default
#     map-based hash-type, are static: such a backend reloads, and says so.
#     The template therefore renders `balance source` with
#     `hash-type consistent` (which is dynamic, and moves only the clients of
#     the servers that changed instead of nearly all of them) and a stable
#     `id` per server, because the consistent-hash ring is built from ids.
#   - Only some keywords are accepted by `add server`; a server whose options
#     use another (cookie, resolvers, init-addr, source ...) or ones lbsync's
#     sequence cannot keep (disabled, track, agent-check) makes adds reload.
#   - `del server` needs maintenance and no connections: a removed server
#     whose sessions do not end within --removal-timeout makes the apply
#     reload, so an old process finishes them (up to hard-stop-after).
#   - Addresses must be IP:port literals (hostnames would need resolvers).
#   - Runtime changes are lost on a reload unless written to the file: the
#     file is always written first.
#   - The path is taken only when the live file is the one last recorded by
#     an apply (otherwise the runtime state is unknown); `.if` blocks and
#     quoted server lines also reload.
#
# Usage: lbsync-apply.sh [--config PATH] [--state-dir DIR]
#          [--reload auto|systemd|master-socket] [--master-socket PATH]
#          [--runtime-socket PATH|none] [--removal-timeout S]
#          [--haproxy BIN] [--lock-timeout S] [--reload-timeout S]
#          [--payload FILE|-] [--status] [--help]
#
# Output: diagnostics go to stderr; the LAST line on stdout is exactly one
# compact JSON object (kept under ~1.5 KB because Azure Run Command returns
# only the last 4,096 bytes of output):
#   {"lbsync":1,"result":"applied","generation":N,"sha256":"...","servers":N,
#    "ms":N,"message":"...","via":"runtime","added":1,"removed":0,"drained":0}
# generation/sha256/servers describe the payload once it parsed (zero/empty
# before that); for --status they describe the live config (plus "workers",
# its distinct server names). `via` says which path changed HAProxy;
# added/removed/drained count server lines. A refusal adds liveWorkers and
# leaving.
#
# Exit codes:
#   0  applied | unchanged | stale | status
#   2  invalid      bad payload, bad usage or sha256 mismatch; nothing changed
#   3  rejected     `haproxy -c` refused the config; live config untouched
#   4  rolled-back  the reload failed; the previous config is restored and serving
#   5  failed       the reload failed and so did the rollback (or no backup existed)
#   6  busy         another apply held the lock past --lock-timeout
#   7  refused      (v2) too many live workers would leave; nothing changed
#
# Needs only POSIX sh, coreutils, awk, gzip, base64, flock and haproxy, plus
# socat for the runtime API and master-socket reloads. It never evals input:
# header values are matched against strict patterns and every variable is
# quoted. Temp files live in $state_dir/tmp/apply.<pid>; an apply killed even
# with SIGKILL leaves them to the next apply, which removes them.

set -u
umask 022

PATH="${PATH:-/usr/bin:/bin}:/usr/sbin:/sbin:/usr/local/sbin"
export PATH
LC_ALL=C
export LC_ALL
lb_prog=lbsync-apply

# >>> lbsync-lib: core/lb-scripts.ts inlines templates/lib/lbsync-lib.sh here
. "${0%/*}/lib/lbsync-lib.sh"
# <<< lbsync-lib

lb_now_ms
start_ms=$lb_ms

config=/etc/haproxy/haproxy.cfg
state_dir=/var/lib/lbsync
reload_mode=auto
master_socket=/run/haproxy-master.sock
runtime_socket=/run/haproxy/admin.sock
removal_timeout=5
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
via=
n_added=
n_removed=
n_drained=
n_workers=
n_live=
n_leaving=
tmp=
staged_created=0
check_pid=

# Print the result line and exit with the documented code.
finish() {
  lb_now_ms
  _ms=$((lb_ms - start_ms))
  [ "$_ms" -ge 0 ] || _ms=0
  lb_apply_result "$1" "$gen" "$sha" "$servers" "$_ms" "${2:-}"
  if [ -n "$via" ]; then lb_json_str via "$via"; fi
  if [ -n "$n_added" ]; then
    lb_json_num added "$n_added"
    lb_json_num removed "$n_removed"
    lb_json_num drained "$n_drained"
  fi
  if [ -n "$n_workers" ]; then lb_json_num workers "$n_workers"; fi
  if [ -n "$n_leaving" ]; then
    lb_json_num liveWorkers "$n_live"
    lb_json_num leaving "$n_leaving"
  fi
  if [ -n "${2:-}" ]; then lb_log "$1: $2"; fi
  lb_json_print
  lb_apply_exit_code "$1"
  exit "$lb_code"
}

cleanup() {
  if [ -n "$check_pid" ]; then kill "$check_pid" 2>/dev/null; fi
  if [ -n "$tmp" ]; then rm -rf "$tmp"; fi
  # The staged file is ours only while we hold the lock.
  if [ "$staged_created" = 1 ]; then rm -f "$config.lbsync-staged"; fi
}
trap cleanup EXIT
# Turn signals into a normal exit so the EXIT trap cleans up.
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

usage() {
  cat <<'LB_EOF'
Usage: lbsync-apply.sh [options] [< payload]
  --config PATH          live HAProxy config (default /etc/haproxy/haproxy.cfg)
  --state-dir DIR        lock, temp files, recorded generation/sha256 (default /var/lib/lbsync)
  --reload MODE          auto | systemd | master-socket (default auto)
  --master-socket PATH   HAProxy master CLI socket (default /run/haproxy-master.sock)
  --runtime-socket PATH  runtime API (stats) socket for changes without a reload,
                         or none (default /run/haproxy/admin.sock)
  --removal-timeout S    seconds a removed server may keep sessions before the
                         apply reloads instead (default 5)
  --haproxy BIN          haproxy binary (default: PATH, then /usr/sbin/haproxy)
  --lock-timeout S       seconds to wait for the lock (default 30)
  --reload-timeout S     seconds to wait for a reload to take (default 30)
  --payload FILE|-       read the payload (format 1 or 2) from FILE or stdin (default -)
  --status               print the live state as a "status" result; change nothing
  --help                 this text
Exit codes: 0 applied|unchanged|stale|status, 2 invalid, 3 rejected,
4 rolled-back, 5 failed, 6 busy, 7 refused. The last stdout line is the JSON result.
LB_EOF
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
    --runtime-socket) need_value "$1" $#; runtime_socket=$2; shift 2 ;;
    --removal-timeout) need_value "$1" $#; removal_timeout=$2; shift 2 ;;
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
lb_is_uint "$lock_timeout" || finish invalid "--lock-timeout must be a whole number of seconds"
lb_is_uint "$reload_timeout" || finish invalid "--reload-timeout must be a whole number of seconds"
lb_is_uint "$removal_timeout" || finish invalid "--removal-timeout must be a whole number of seconds"
[ -n "$config" ] || finish invalid "--config must not be empty"
[ -n "$state_dir" ] || finish invalid "--state-dir must not be empty"
lb_is_plain_path "$master_socket" || finish invalid "--master-socket must be a plain path ([A-Za-z0-9._/@+-])"
lb_is_plain_path "$runtime_socket" || finish invalid "--runtime-socket must be a plain path ([A-Za-z0-9._/@+-]) or none"
# awk reads `name=value` operands as assignments; a leading ./ or / never is one.
case $config in /*) ;; *) config=./$config ;; esac
case $state_dir in /*) ;; *) state_dir=./$state_dir ;; esac

if [ -z "$haproxy_bin" ]; then
  haproxy_bin=$(command -v haproxy 2>/dev/null || :)
  for _c in /usr/sbin/haproxy /usr/local/sbin/haproxy; do
    if [ -z "$haproxy_bin" ] && [ -x "$_c" ]; then haproxy_bin=$_c; fi
  done
fi

# file_sha FILE: sets fsha to its sha256 (empty when the file is absent).
file_sha() {
  fsha=
  if [ -f "$1" ]; then
    fsha=$(sha256sum <"$1") || return 1
    fsha=${fsha%% *}
  fi
}

# Recorded generation; a corrupt file counts as 0 rather than blocking every
# future apply, and says so.
recorded_generation() {
  rgen=0
  if [ -f "$state_dir/generation" ]; then
    IFS= read -r rgen <"$state_dir/generation" || :
    if ! lb_is_uint "$rgen"; then
      lb_log "ignoring corrupt $state_dir/generation"
      rgen=0
    fi
  fi
}

recorded_sha() {
  rsha=
  if [ -f "$state_dir/sha256" ]; then
    IFS= read -r rsha <"$state_dir/sha256" || :
    lb_is_sha256 "$rsha" || rsha=
  fi
}

if [ "$mode" = status ]; then
  recorded_generation
  gen=$rgen
  file_sha "$config" || finish failed "cannot read $config"
  sha=$fsha
  if [ ! -f "$config" ]; then finish status "no live config at $config"; fi
  # Server lines anywhere, and distinct server names of backend/listen sections.
  _counts=$(awk '
    { sub(/^[ \t]+/, "") }
    /^(backend|listen)[ \t]/ { be = 1; next }
    /^(global|defaults|frontend|peers|resolvers|userlist|mailers|program|http-errors|ring|cache|fcgi-app)([ \t]|$)/ { be = 0; next }
    /^server[ \t]/ { n++; if (be) { split($0, t, /[ \t]+/); if (!(t[2] in seen)) { seen[t[2]] = 1; w++ } } }
    END { print n + 0, w + 0 }' "$config") || finish failed "cannot read $config"
  servers=${_counts% *}
  n_workers=${_counts#* }
  finish status ""
fi

# ---- 1. decode and verify ---------------------------------------------------
# The temp dir is named after our pid so any later apply can tell whether its
# owner still runs (lb_sweep, under the lock).
if [ ! -d "$state_dir/tmp" ]; then
  mkdir -p -m 700 "$state_dir/tmp" 2>/dev/null || finish failed "cannot create $state_dir/tmp"
fi
tmp=$state_dir/tmp/apply.$$
[ ! -e "$tmp" ] || rm -rf "$tmp"
mkdir -m 700 "$tmp" || finish failed "cannot create $tmp"

if [ "$payload_src" = - ]; then
  head -c "$((max_bytes + 1))" >"$tmp/payload" || finish invalid "cannot read the payload from stdin"
  pfile=$tmp/payload
else
  [ -f "$payload_src" ] || finish invalid "payload file not found: $payload_src"
  case $payload_src in /*) pfile=$payload_src ;; *) pfile=./$payload_src ;; esac
fi

# One pass over the payload: the header in its fixed order (values only ever
# compared against patterns), the body a single line of base64, the size.
# Prints "ok <version> <generation> <sha256> <servers> <guard> <force>
# <header bytes>" (guard: max-removal-percent in hundredths, -1 for none) or
# "bad <reason>".
_hdr=$(awk -v max="$max_bytes" '
  function bad(m) { print "bad " m; done = 1; exit }
  function uint(v) { return v ~ /^(0|[1-9][0-9]*)$/ && length(v) <= 16 }
  {
    bytes += length($0) + 1
    if (bytes > max + 1) bad("payload larger than " max " bytes")
  }
  NR == 1 {
    if ($0 == "lbsync=1") { ver = 1; last = 5 }
    else if ($0 == "lbsync=2") { ver = 2; last = 7 }
    else bad("unsupported payload format (line 1 must be lbsync=1 or lbsync=2)")
    next
  }
  NR == 2 {
    if (substr($0, 1, 11) != "generation=") bad("line 2 must be generation=<digits>")
    g = substr($0, 12); if (!uint(g)) bad("generation must be digits")
    next
  }
  NR == 3 {
    if (substr($0, 1, 7) != "sha256=") bad("line 3 must be sha256=<64 hex>")
    s = substr($0, 8); if (length(s) != 64 || s ~ /[^0-9a-f]/) bad("sha256 must be 64 lowercase hex digits")
    next
  }
  NR == 4 {
    if (substr($0, 1, 8) != "servers=") bad("line 4 must be servers=<digits>")
    n = substr($0, 9); if (!uint(n)) bad("servers must be digits")
    next
  }
  NR == 5 && ver == 2 {
    if (substr($0, 1, 20) != "max-removal-percent=") bad("line 5 must be max-removal-percent=<0-100|none>")
    p = substr($0, 21)
    if (p == "none") guard = -1
    else if (p ~ /^(100|[1-9]?[0-9])(\.[0-9][0-9]?)?$/) {
      w = p; f = ""
      if (index(p, ".")) { w = substr(p, 1, index(p, ".") - 1); f = substr(p, index(p, ".") + 1) }
      while (length(f) < 2) f = f "0"
      guard = w * 100 + f
      if (guard > 10000) bad("max-removal-percent must be at most 100")
    } else bad("max-removal-percent must be 0-100 (at most two decimals) or none")
    next
  }
  NR == 6 && ver == 2 {
    if ($0 == "force=0") force = 0
    else if ($0 == "force=1") force = 1
    else bad("line 6 must be force=0 or force=1")
    next
  }
  NR == last {
    if ($0 != "---") bad("line " last " must be ---")
    hb = bytes
    next
  }
  NR == last + 1 {
    if ($0 == "") bad("payload body is empty")
    if ($0 ~ /[^A-Za-z0-9+\/=]/) bad("payload body is not base64")
    next
  }
  NR > last + 1 { bad("payload body must be a single base64 line") }
  END {
    if (done) exit
    if (NR == 0) bad("empty payload")
    if (NR <= last) bad("truncated payload header")
    if (NR == last) bad("payload body is empty")
    if (ver == 1) { guard = -1; force = 0 }
    print "ok", ver, g, s, n, guard, force, hb
  }' "$pfile") || finish invalid "cannot read the payload"
case $_hdr in
  'bad '*) finish invalid "${_hdr#bad }" ;;
  'ok '*) ;;
  *) finish invalid "cannot parse the payload header" ;;
esac
read -r _ok _ver _gen _sha _servers guard force hdr_bytes <<LB_EOF
$_hdr
LB_EOF
# Re-checked here: what reaches arithmetic and the result line is ours.
lb_is_uint "$_gen" && lb_is_sha256 "$_sha" && lb_is_uint "$_servers" && lb_is_uint "$hdr_bytes" ||
  finish invalid "cannot parse the payload header"
case $guard in -1 | 0 | [1-9] | [1-9][0-9] | [1-9][0-9][0-9] | [1-9][0-9][0-9][0-9] | 10000) ;; *) finish invalid "bad guard" ;; esac
case $force in 0 | 1) ;; *) finish invalid "bad force flag" ;; esac
gen=$_gen
sha=$_sha
servers=$_servers

# One decode pipeline; head -c caps a gzip bomb. gzip reports a corrupted
# stream (bad base64 decodes to one) on stderr, checked with a builtin.
tail -c +"$((hdr_bytes + 1))" "$pfile" | base64 -d 2>/dev/null |
  gzip -dc 2>"$tmp/gzip.err" | head -c "$((max_bytes + 1))" >"$tmp/config"
file_sha "$tmp/config"
if [ -s "$tmp/gzip.err" ] || [ "$fsha" != "$sha" ]; then
  # A bomb cut short by head -c can make gzip complain of a broken pipe.
  [ "$(wc -c <"$tmp/config")" -le "$max_bytes" ] || finish invalid "decoded config larger than $max_bytes bytes"
  if [ -s "$tmp/gzip.err" ]; then
    IFS= read -r _e <"$tmp/gzip.err" || :
    finish invalid "payload body is not valid base64+gzip: ${_e#gzip: }"
  fi
  finish invalid "sha256 mismatch: payload says $sha, content is $fsha"
fi

[ -n "$haproxy_bin" ] && [ -x "$haproxy_bin" ] || command -v "$haproxy_bin" >/dev/null 2>&1 ||
  finish failed "haproxy not found (use --haproxy)"

# ---- 6 (started). check the new file in the background -----------------------
# Nothing changes before it passes, but it starts now: `haproxy -c` has a
# fixed start-up cost (OpenSSL initialisation, ~50 ms) that the lock, the
# plan and the staging copies then hide. stale and unchanged results kill it.
"$haproxy_bin" -c -f "$tmp/config" >"$tmp/check.out" 2>&1 9>&- &
check_pid=$!

# ---- 2. lock -------------------------------------------------------------------
# `command` keeps a failed redirection from killing the shell (exec is a
# special builtin) before it can print a result line.
command exec 9>>"$state_dir/lock" || finish failed "cannot open $state_dir/lock"
if [ "$lock_timeout" -eq 0 ]; then
  flock -n 9 || finish busy "another apply holds $state_dir/lock"
else
  flock -w "$lock_timeout" 9 || finish busy "another apply held $state_dir/lock for ${lock_timeout}s"
fi
lb_sweep "$state_dir/tmp" apply cmd

record() {
  printf '%s\n' "$gen" >"$state_dir/generation.tmp" &&
    mv -f "$state_dir/generation.tmp" "$state_dir/generation" &&
    printf '%s\n' "$sha" >"$state_dir/sha256.tmp" &&
    mv -f "$state_dir/sha256.tmp" "$state_dir/sha256"
}

# ---- 3. newer wins -------------------------------------------------------------
recorded_generation
if [ "$gen" -lt "$rgen" ]; then
  finish stale "generation $gen is older than the recorded $rgen; nothing changed"
fi

# ---- 4. idempotent -----------------------------------------------------------
# The live file alone is not proof HAProxy runs it: a run killed between the
# rename and the reload leaves a new file and an old process. Such a run never
# recorded its sha, so when a recorded sha exists it must match too.
file_sha "$config" || finish failed "cannot read $config"
live_sha=$fsha
recorded_sha
if [ "$live_sha" = "$sha" ] && { [ -z "$rsha" ] || [ "$rsha" = "$sha" ]; }; then
  record || finish failed "cannot record the generation in $state_dir"
  finish unchanged ""
fi

# ---- 5. plan: runtime or reload, guard -------------------------------------
# plan_awk reads HAProxy's `show servers state` (which=R), the live file
# (which=L) and the new file (which=N). mode=plan writes the runtime
# commands into dir/ops1 (drains, adds, changes), dir/waits (session
# queries for removed servers) and dir/ops3 (maintenance + delete), and
# prints "summary <path> <added> <removed> <drained> <liveWorkers>
# <leaving> <waits>" and "reason <why the runtime path is ruled out>".
# mode=verify (R = state after the change, L = N = new file) prints "ok"
# or "mismatch <first difference>".
plan_awk='
function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t\r]+$/, "", s); return s }
function why(m) { if (reason == "") reason = m }
BEGIN {
  n0 = split("agent-check allow-0rtt backup check check-send-proxy check-ssl check-via-socks4 disabled enabled force-sslv3 force-tlsv10 force-tlsv11 force-tlsv12 force-tlsv13 no-ssl-reuse no-sslv3 no-tlsv10 no-tlsv11 no-tlsv12 no-tlsv13 no-tls-tickets send-proxy send-proxy-v2 send-proxy-v2-ssl send-proxy-v2-ssl-cn ssl tfo tls-tickets", k0, " ")
  for (i = 1; i <= n0; i++) A0[k0[i]] = 1
  n1 = split("agent-addr agent-inter agent-port agent-send alpn addr ca-file check-alpn check-proto check-sni ciphers ciphersuites crl-file crt downinter error-limit fall fastinter id inter maxconn maxqueue minconn npn observe on-error on-marked-down on-marked-up pool-low-conn pool-max-conn pool-purge-delay port proto proxy-v2-options rise slowstart sni ssl-max-ver ssl-min-ver track usesrc verify verifyhost weight ws", k1, " ")
  for (i = 1; i <= n1; i++) A1[k1[i]] = 1
  # Accepted by add server, but the add/enable/remove sequence cannot keep them.
  NOT["disabled"] = 1; NOT["track"] = 1; NOT["agent-check"] = 1; NOT["usesrc"] = 1
  ns = split("global defaults frontend backend listen peers resolvers userlist mailers program http-errors ring cache fcgi-app", ks, " ")
  for (i = 1; i <= ns; i++) SEC[ks[i]] = 1
  # The runtime commands are only worth computing while the runtime path is possible.
  live = (mode == "verify")
}
# HAProxy state: one string per server, split when the file names it.
which == "R" {
  if (FNR == 1) { rtok = ($1 == "1"); next }
  if (NF < 19 || substr($1, 1, 1) == "#") next
  R[$2 SUBSEP $4] = $3 " " $5 " " $7 " " $8 " " $14 " " $19
  Rbe[$2] = 1
  next
}
{
  # Fields split by the default rule (fast); only section lines need more.
  if (NF == 0) next
  c = substr($1, 1, 1)
  if (c == "#") next
  f = which
  if (c == ".") { cond = 1; why("the config uses conditional blocks (.if)") }
  if (inbe && $1 == "server") { server(); next }
  line = trim($0)
  n = split(line, t, " ")
  if (t[1] in SEC) section()
  else if (indef || inbe) {
    if (t[1] == "balance") bal[f, scope] = t[2]
    else if (t[1] == "hash-type") hash[f, scope] = t[2]
    else if (t[1] == "default-server") {
      o = ""; for (i = 2; i <= n; i++) { if (substr(t[i], 1, 1) == "#") break; o = o " " t[i] }
      dsrv[f, scope] = dsrv[f, scope] o
      delete CH[f, be]; delete BW[f, be]
    }
  }
  # The skeleton: every line but comments and backend server lines, in order.
  if (f == "L") LSK[++nlk] = line
  else if (f == "N" && mode == "plan") {
    if (LSK[++nnk] != line) why("structural change in " sid)
  }
}
function section(   i, par) {
  sid = t[1] " " (n >= 2 ? t[2] : "")
  inbe = 0; indef = 0
  if (t[1] == "defaults") {
    indef = 1; dcount[f]++; did = dcount[f]; scope = "d" SUBSEP did
    par = lastdef[f]
    if (n >= 2 && t[2] != "from") dname[f, t[2]] = did
    for (i = 2; i < n; i++) if (t[i] == "from") par = dname[f, t[i + 1]] + 0
    dpar[f, did] = par
    lastdef[f] = did
  } else if (t[1] == "backend" || t[1] == "listen") {
    inbe = 1; be = t[2]; scope = "b" SUBSEP be
    if (f == "N") NBE[be] = 1
    par = lastdef[f]
    for (i = 3; i < n; i++) if (t[i] == "from") { par = dname[f, t[i + 1]] + 0; if (!par) why("backend " be " inherits from an unknown defaults section") }
    bpar[f, be] = par
  }
}
# Options a server gets from its defaults chain and backend (so far), in order.
function chain(f, be,   s, d, depth) {
  if ((f, be) in CH) return CH[f, be]
  s = dsrv[f, "b" SUBSEP be]
  d = bpar[f, be]
  while (d && depth++ < 20) { s = dsrv[f, "d" SUBSEP d] s; d = dpar[f, d] }
  CH[f, be] = s
  return s
}
function setting(f, be, key,   v, d, depth) {
  if (key == "balance") v = bal[f, "b" SUBSEP be]; else v = hash[f, "b" SUBSEP be]
  d = bpar[f, be]
  while (v == "" && d && depth++ < 20) {
    if (key == "balance") v = bal[f, "d" SUBSEP d]; else v = hash[f, "d" SUBSEP d]
    d = dpar[f, d]
  }
  return v
}
function dynamic(f, be,   b) {
  b = setting(f, be, "balance")
  if (b == "" || b == "roundrobin" || b == "leastconn" || b == "first" || b == "random") return 1
  if (b == "static-rr") return 0
  return setting(f, be, "hash-type") == "consistent"
}
# A server effective options: sets E_w (weight), E_chk, E_id, E_bad (the first
# keyword add server cannot take or lbsync cannot keep). Most servers have no
# options of their own, so their result is kept per backend.
function effof(f, be, o) {
  if (o == "" && ((f, be) in BW)) { E_w = BW[f, be]; E_chk = BC[f, be]; E_id = BI[f, be]; E_bad = BB[f, be]; return }
  effparse(chain(f, be) " " o)
  if (o == "") { BW[f, be] = E_w; BC[f, be] = E_chk; BI[f, be] = E_id; BB[f, be] = E_bad }
}
function effparse(list,   a, m, i, k) {
  E_w = 1; E_chk = 0; E_id = ""; E_bad = ""
  m = split(list, a, " ")
  for (i = 1; i <= m; i++) {
    k = a[i]
    if (k in A0) { if (k == "check") E_chk = 1 }
    else if (k in A1) { if (k == "weight") E_w = a[i + 1] + 0; if (k == "id") E_id = a[i + 1]; i++ }
    else { if (E_bad == "") E_bad = k; return }
    if ((k in NOT) && E_bad == "") E_bad = k
  }
}
# Options without their weight, which the runtime API changes in place.
function noweight(o,   a, m, i, r) {
  m = split(o, a, " "); r = ""
  for (i = 1; i <= m; i++) { if (a[i] == "weight") { i++; continue }; r = r " " a[i] }
  return r
}
# Sets P_ip/P_port from an IP:port literal; 0 for any other address form.
function parseaddr(s) {
  if (s ~ /^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+:[0-9]+$/) { P_ip = substr(s, 1, index(s, ":") - 1); P_port = substr(s, index(s, ":") + 1); return 1 }
  if (s ~ /^\[[0-9A-Fa-f:.]+\]:[0-9]+$/) { P_ip = substr(s, 2, index(s, "]") - 2); P_port = substr(s, index(s, "]") + 2); return 1 }
  return 0
}
function hex4(n,   h, d) { h = ""; do { d = n % 16; h = substr("0123456789abcdef", d + 1, 1) h; n = int(n / 16) } while (n > 0); return h }
# IPv6 in one canonical spelling (8 groups, no leading zeros, lowercase).
function canon(ip,   a, q, h, tl, hn, tn, hp, tp, i, out, fill, g) {
  if (index(ip, ":") == 0) return ip
  ip = tolower(ip)
  if (ip ~ /\.[0-9]+$/) {
    i = split(ip, q, ":"); split(q[i], a, ".")
    sub(/[0-9.]+$/, hex4(a[1] * 256 + a[2]) ":" hex4(a[3] * 256 + a[4]), ip)
  }
  if (index(ip, "::")) { h = substr(ip, 1, index(ip, "::") - 1); tl = substr(ip, index(ip, "::") + 2) } else { h = ip; tl = "" }
  hn = h == "" ? 0 : split(h, hp, ":"); tn = tl == "" ? 0 : split(tl, tp, ":")
  fill = 8 - hn - tn; out = ""
  for (i = 1; i <= hn; i++) { g = hp[i]; sub(/^0+/, "", g); out = out (out == "" ? "" : ":") (g == "" ? "0" : g) }
  for (i = 1; i <= fill; i++) out = out (out == "" ? "" : ":") "0"
  for (i = 1; i <= tn; i++) { g = tp[i]; sub(/^0+/, "", g); out = out (out == "" ? "" : ":") (g == "" ? "0" : g) }
  return out
}
function emit(c) { ops1 = ops1 c "\n"; nops++; changed[be] = 1 }
# A backend server line: bookkeeping for the guard and the counts, and (while
# the runtime path is possible) the commands that bring HAProxy to it.
function server(   k, o, i, sv, r, rs) {
  k = be SUBSEP $2
  if (index($0, "\"") || index($0, "\\")) why("server lines with quotes or escapes")
  o = ""
  for (i = 4; i <= NF; i++) { if (substr($i, 1, 1) == "#") break; o = o (o == "" ? "" : " ") $i }
  effof(f, be, o)
  if (f == "L") {
    if (k in LO) why("server " $2 " appears twice in backend " be)
    LO[k] = o; LWT[k] = E_w; nl++
    if (!($2 in LWN)) { LWN[$2] = 1; liveW++ }
    if (E_w > 0) LS[$2] = 1
    return
  }
  if (k in NK) why("server " $2 " appears twice in backend " be)
  NK[k] = 1
  if (E_w > 0) NS[$2] = 1
  if (k in LO) { matched++; if (LWT[k] > 0 && E_w == 0) drained++ } else added++
  if (mode == "plan" && !live) live = (preset == "" && rtok && !cond && reason == "")
  if (!live || reason != "") return
  sv = be "/" $2
  if (!(be in Rbe)) { why("backend " be " is not in the runtime state"); return }
  if (!parseaddr($3)) { why("server " sv " address " $3 " is not an IP:port literal"); return }
  if (!(k in R)) {
    if (E_bad != "") { why("server " sv " uses " E_bad ", which add server in HAProxy 2.6 does not take (or lbsync cannot keep)"); return }
    adds = adds "add server " sv " " $3 chain(f, be) " " o "\n"
    if (E_chk) adds = adds "enable health " sv "\n"
    adds = adds "enable server " sv "\n"
    changed[be] = 1; nops++
    return
  }
  if (mode == "plan") {
    if (!(k in LO)) { why("the runtime state has " sv ", which the live file does not"); return }
    if (noweight(LO[k]) != noweight(o)) { why("the options of " sv " changed"); return }
  }
  # id addr admin weight check-state port
  split(R[k], rs, " ")
  if (E_id != "" && E_id != rs[1]) { why("server " sv " has id " rs[1] " in HAProxy, " E_id " in the file"); return }
  if (canon(P_ip) != canon(rs[2]) || P_port != rs[6]) emit("set server " sv " addr " P_ip " port " P_port)
  if (rs[4] != E_w) emit("set server " sv " weight " E_w)
  if (rs[3] != 0) emit("set server " sv " state ready")
  if (E_chk && int(rs[5] / 4) % 2 == 0) emit("enable health " sv)
  if (!E_chk && int(rs[5] / 2) % 2 == 1) why("health checks of " sv " differ from the file")
}
END {
  removed = nl - matched
  for (nm in LS) if (!(nm in NS)) leaving++
  if (mode == "plan") {
    if (nnk != nlk) why("sections were added or removed")
    if (preset != "") why(preset)
    if (!rtok) why("the runtime API did not answer show servers state")
  }
  if (reason == "") {
    for (k in R) {
      split(k, kk, SUBSEP)
      if (!(kk[1] in NBE) || (k in NK)) continue
      sv = kk[1] "/" kk[2]; changed[kk[1]] = 1; nops++
      split(R[k], rs, " ")
      drains = drains "set server " sv " state drain\n"
      waits = waits "show stat " kk[1] " 4 " rs[1] "\n"
      dels = dels "set server " sv " state maint\ndel server " sv "\n"
      nwait++
    }
    for (cb in changed) if (!dynamic("N", cb)) why("backend " cb " uses balance " (setting("N", cb, "balance") == "" ? "roundrobin" : setting("N", cb, "balance")) " with hash-type " (setting("N", cb, "hash-type") == "" ? "map-based" : setting("N", cb, "hash-type")) ", a static algorithm: add server needs a dynamic one")
  }
  if (mode == "verify") {
    if (reason != "") print "mismatch " reason
    else if (nops > 0) print "mismatch " substr(drains adds ops1, 1, index(drains adds ops1, "\n") - 1)
    else print "ok"
    exit
  }
  if (reason == "") {
    # Batch 1 ends with the first session count of the removed servers, or
    # (nothing to remove) with the state to verify; batch 3 deletes and
    # reads the state back. One socat each.
    printf "prompt\n%s%s%s%squit\n", drains, adds, ops1, (waits != "" ? waits : "show servers state\n") > (dir "/ops1")
    if (waits != "") {
      printf "prompt\n%squit\n", waits > (dir "/waits")
      printf "prompt\n%sshow servers state\nquit\n", dels > (dir "/ops3")
    }
  }
  print "reason " reason
  print "summary", (reason == "" ? "runtime" : "reload"), added + 0, removed + 0, drained + 0, liveW + 0, leaving + 0, nwait + 0
}'

# check_answers OPS OUT: pairs each command of a prompt-mode batch with its
# answer. Prints "error <command>: <answer>" for the first command HAProxy
# refused, else "ok <sessions>" (the scur sum of the `show stat` answers).
# The answer to `show servers state` goes to dir/state.after for the check.
check_answers() {
  awk -v dir="$tmp" '
    which == "C" { if ($0 != "prompt" && $0 != "quit") cmd[++nc] = $0; next }
    # The answer to command i follows the i-th prompt ("> "); the first,
    # empty answer (before any prompt) is the one to "prompt" itself.
    /^> / { r++; sub(/^> /, "") }
    r < 1 || r > nc { next }
    cmd[r] ~ /^show servers state/ { print > (dir "/state.after"); next }
    cmd[r] ~ /^show stat / { if ($0 !~ /^#/ && split($0, c, ",") > 5) sess += c[5]; next }
    $0 != "" && $0 !~ /^(New server registered\.|Server deleted\.|IP changed from|no need to change the addr)/ {
      if (!(r in bad)) bad[r] = $0
    }
    END {
      for (i = 1; i <= nc; i++) if (i in bad) { print "error " cmd[i] ": " bad[i]; exit }
      if (r < nc) { print "error HAProxy answered " r + 0 " of " nc " runtime commands"; exit }
      print "ok " sess + 0
    }' which=C "$1" which=O "$2"
}

rt_preset=
if [ ! -f "$config" ]; then
  rt_preset="no live config yet"
elif [ "$runtime_socket" = none ]; then
  rt_preset="no runtime socket (--runtime-socket none)"
elif [ ! -S "$runtime_socket" ]; then
  rt_preset="runtime socket $runtime_socket is absent"
elif ! command -v socat >/dev/null 2>&1; then
  rt_preset="socat is not installed"
elif [ "$rsha" != "$live_sha" ]; then
  rt_preset="the live file is not the one the last apply recorded (an interrupted apply or a hand edit), so HAProxy's state is unknown"
fi
if [ -z "$rt_preset" ]; then
  lb_cli "$runtime_socket" >"$tmp/state.before" <<'LB_EOF'
show servers state
LB_EOF
fi
[ -f "$tmp/state.before" ] || : >"$tmp/state.before"
_live=$config
[ -f "$_live" ] || _live=/dev/null
awk -v mode=plan -v dir="$tmp" -v preset="$rt_preset" "$plan_awk" \
  which=R "$tmp/state.before" which=L "$_live" which=N "$tmp/config" >"$tmp/plan" ||
  finish failed "cannot compare the configs"
{
  IFS= read -r rt_reason
  read -r _kind path n_added n_removed n_drained live_workers leaving _waits
} <"$tmp/plan" || finish failed "cannot compare the configs"
rt_reason=${rt_reason#reason}
rt_reason=${rt_reason# }
[ "$_kind" = summary ] && lb_is_uint "$n_added" && lb_is_uint "$n_removed" &&
  lb_is_uint "$n_drained" && lb_is_uint "$live_workers" && lb_is_uint "$leaving" ||
  finish failed "cannot compare the configs"

# The check's verdict (it ran in the background meanwhile); a config HAProxy
# refuses is reported as rejected whatever else is wrong with it.
wait_check() {
  _rc=0
  wait "$check_pid" || _rc=$?
  check_pid=
  if [ "$_rc" -ne 0 ]; then
    _why=$(awk '
      { gsub(/[ \t]+/, " ") }
      /\[ALERT\]/ { a = a (a == "" ? "" : "; ") $0 }
      { all = all (all == "" ? "" : "; ") $0 }
      END { print substr(a != "" ? a : all, 1, 1024) }' "$tmp/check.out")
    finish rejected "haproxy -c refused the config: ${_why:-no output}"
  fi
}

# Guard (payload v2): the share of live workers leaving the serving set.
if [ "$guard" != -1 ] && [ "$force" = 0 ] && [ "$live_workers" -gt 0 ] &&
  [ $((leaving * 10000)) -gt $((guard * live_workers)) ]; then
  wait_check
  n_live=$live_workers
  n_leaving=$leaving
  _pct=$((leaving * 100 / live_workers))
  _max=$((guard / 100))
  [ $((guard % 100)) -eq 0 ] || _max=$_max.$((guard % 100 / 10))$((guard % 10))
  finish refused "would take $leaving of $live_workers live workers out of service (${_pct}% > max-removal-percent $_max); nothing changed; force the sync to apply anyway"
fi

# ---- 7 (prepared). stage beside the live file, back it up ---------------------
staged="$config.lbsync-staged"
backup="$config.lbsync-backup"
[ ! -e "$staged" ] || rm -f "$staged"
staged_created=1
if [ -f "$config" ]; then
  # cp -p first so the new file keeps the live file's owner and mode.
  cp -p "$config" "$staged" && cp "$tmp/config" "$staged" || finish failed "cannot write $staged"
else
  cp "$tmp/config" "$staged" || finish failed "cannot write $staged"
fi

had_backup=0
if [ -f "$config" ]; then
  cp -p "$config" "$backup.tmp" && mv -f "$backup.tmp" "$backup" ||
    finish failed "cannot back up $config; nothing changed"
  had_backup=1
fi

# ---- 6. wait for the check -------------------------------------------------------
wait_check

# ---- reload helpers ------------------------------------------------------------------
# Poll `show proc` until the master's reload counter rises and a worker of the
# new generation is listed. lb_show_proc's socat retries the connection while
# the master re-executes itself (no sleep forks); a short nap only when the
# master answers but has not reloaded yet.
verify_reload() {
  lb_now_ms
  _deadline=$((lb_ms + reload_timeout * 1000))
  _nap=0.005
  while :; do
    if lb_show_proc "$master_socket" "$tmp/proc"; then
      if [ "$lb_reloads" -gt "$before_reloads" ]; then
        if [ "$lb_failed" -gt "$before_failed" ]; then
          # The 2.6 master CLI has no startup logs to quote; the config passed
          # -c, so the cause is at startup (ports in use, FD limits, certs).
          reload_error="HAProxy reported a failed reload (failed: $lb_failed); see HAProxy's log for the startup error (ports in use, FD limits)"
          return 1
        fi
        if [ "$lb_fresh" -gt 0 ]; then return 0; fi
      fi
      lb_sleep "$_nap"
      _nap=0.02
    fi
    lb_now_ms
    if [ "$lb_ms" -ge "$_deadline" ]; then break; fi
  done
  reload_error="the reload did not take within ${reload_timeout}s"
  return 1
}

use_master=0
case $reload_mode in
  master-socket) use_master=1 ;;
  auto) if [ -S "$master_socket" ] && command -v socat >/dev/null 2>&1; then use_master=1; fi ;;
esac

# One reload, verified. Sets reload_error on failure.
do_reload() {
  reload_error=
  if [ "$use_master" = 1 ]; then
    if ! lb_show_proc "$master_socket" "$tmp/proc"; then
      reload_error="HAProxy master socket $master_socket does not answer"
      return 1
    fi
    before_reloads=$lb_reloads
    before_failed=$lb_failed
    lb_cli "$master_socket" >/dev/null <<'LB_EOF' || :
reload
LB_EOF
    verify_reload
    return $?
  fi
  # systemd: verify through the master socket too when there is one, since
  # `systemctl reload` returns once the signal is sent, not once it took.
  _verify=0
  if [ -S "$master_socket" ] && command -v socat >/dev/null 2>&1 &&
    lb_show_proc "$master_socket" "$tmp/proc"; then
    _verify=1
    before_reloads=$lb_reloads
    before_failed=$lb_failed
  fi
  if ! timeout "$reload_timeout" systemctl reload haproxy >"$tmp/systemctl.out" 2>&1 9>&-; then
    reload_error="systemctl reload haproxy failed: $(tr -s ' \t\n' '   ' <"$tmp/systemctl.out" | head -c 1024)"
    return 1
  fi
  if ! systemctl is-active haproxy >/dev/null 2>&1; then
    reload_error="haproxy is not active after systemctl reload"
    return 1
  fi
  if [ "$_verify" = 1 ]; then
    verify_reload
    return $?
  fi
  return 0
}

# ---- runtime helpers -------------------------------------------------------------
# run_batch NAME: send $tmp/NAME, check the answers; sets rt_error (failure)
# or rt_sessions.
run_batch() {
  : >"$tmp/state.after"
  if ! lb_cli "$runtime_socket" <"$tmp/$1" >"$tmp/$1.out"; then
    rt_error="the runtime socket failed during the change"
    return 1
  fi
  _ans=$(check_answers "$tmp/$1" "$tmp/$1.out")
  case $_ans in
    'ok '*) rt_sessions=${_ans#ok } ;;
    *)
      rt_error=${_ans#error }
      return 1
      ;;
  esac
}

run_runtime() {
  rt_error=
  run_batch ops1 || return 1
  if [ -s "$tmp/waits" ]; then
    # Removed servers are drained; wait (bounded) for their sessions to end.
    lb_now_ms
    _deadline=$((lb_ms + removal_timeout * 1000))
    _nap=0.01
    while [ "$rt_sessions" != 0 ]; do
      lb_now_ms
      if [ "$lb_ms" -ge "$_deadline" ]; then
        rt_error="removed servers still had $rt_sessions session(s) after ${removal_timeout}s"
        return 1
      fi
      lb_sleep "$_nap"
      case $_nap in 0.01) _nap=0.02 ;; 0.02) _nap=0.05 ;; *) _nap=0.1 ;; esac
      run_batch waits || return 1
    done
    run_batch ops3 || return 1
  fi
  _v=$(awk -v mode=verify -v dir="$tmp" "$plan_awk" \
    which=R "$tmp/state.after" which=L /dev/null which=N "$tmp/config")
  case $_v in
    ok) return 0 ;;
    *)
      rt_error="the runtime state does not match the new file: ${_v#mismatch }"
      return 1
      ;;
  esac
}

# A reload needs someone to reload: an unreachable master is a failure with
# nothing changed.
if [ "$path" = reload ] && [ "$use_master" = 1 ]; then
  command -v socat >/dev/null 2>&1 || finish failed "socat is required for --reload master-socket"
  if ! lb_show_proc "$master_socket" "$tmp/proc"; then
    rm -f "$staged"
    finish failed "HAProxy master socket $master_socket does not answer; nothing changed"
  fi
fi

# From here to the end, an interruption would leave file and process out of
# step, so signals wait; the section is bounded by the removal and two
# reload timeouts.
trap '' INT TERM HUP
# ---- 7. swap ---------------------------------------------------------------------
mv -f "$staged" "$config" || finish failed "cannot rename $staged over $config; nothing changed"
staged_created=0

# ---- 8. runtime path ---------------------------------------------------------------
fallback=
if [ "$path" = runtime ]; then
  if run_runtime; then
    via=runtime
    record || finish failed "applied, but cannot record the generation in $state_dir"
    finish applied ""
  fi
  fallback="the runtime path failed ($rt_error); reloaded instead"
  lb_log "$fallback"
fi

# ---- 8/9. reload, roll back on failure -----------------------------------------
via=reload
if do_reload; then
  record || finish failed "applied, but cannot record the generation in $state_dir"
  finish applied "${fallback:-reloaded: $rt_reason}"
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
