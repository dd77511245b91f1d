#!/bin/sh
# lbsync-gcp-agent.sh - the LB-side agent of lbsync's GCP path (docs/gcp.md).
#
# GCP has no Run Command, so the function writes the payload into this VM's
# instance metadata and this agent carries it to lbsync-apply.sh:
#
#   1. long-poll  GET <md>/computeMetadata/v1/instance/attributes/lbsync-manifest
#                 ?wait_for_change=true&last_etag=<etag>&timeout_sec=<n>
#      (header Metadata-Flavor: Google; etag starts at NONE and follows the
#      ETag response header);
#   2. the manifest names the generation, the payload's sha256 and the
#      sha256 of each chunk key lbsync-payload-<i> (a value holds at most
#      256 KiB, so large payloads are split); fetch and verify every chunk and
#      the whole;
#   3. skip any generation not newer than the last one handled: the same
#      generation is never applied twice (timeouts and unrelated metadata
#      changes wake the poll with the same manifest);
#   4. run lbsync-apply.sh with the manifest's arguments: `arg=<word>` lines
#      in order (core/apply-contract.ts manifestArgLines), each flag one of
#      TRANSPORT_APPLY_FLAGS and each value a plain path or word; manifests
#      of older functions (config=, state-dir=, reload=, master-socket=) are
#      read too;
#   5. PUT its JSON result line to guest attribute lbsync/result and the live
#      state (lbsync-apply.sh --status) to lbsync/status, where the function
#      reads them back through the Compute API.
#
# Metadata server errors (5xx, 429, connection refused) back off
# exponentially up to --max-backoff seconds; a missing manifest (no push yet)
# is polled every --idle seconds.
#
# Usage: lbsync-gcp-agent.sh [--metadata-url URL] [--apply PATH] [--state-dir DIR]
#          [--timeout-sec N] [--idle N] [--max-backoff N] [--pid-file PATH]
#          [--max-runtime N]
# Environment equivalents: LBSYNC_METADATA_URL, LBSYNC_APPLY_SCRIPT,
# LBSYNC_AGENT_STATE_DIR. Needs POSIX sh, curl and coreutils.

set -u
umask 022
PATH="${PATH:-/usr/bin:/bin}:/usr/sbin:/sbin:/usr/local/sbin:/usr/local/bin"
export PATH
LC_ALL=C
export LC_ALL
lb_prog=lbsync-gcp-agent

# >>> lbsync-lib: core/lb-scripts.ts inlines templates/lib/lbsync-lib.sh here
. "${0%/*}/lib/lbsync-lib.sh"
# <<< lbsync-lib

md_url=${LBSYNC_METADATA_URL:-http://169.254.169.254}
apply_script=${LBSYNC_APPLY_SCRIPT:-/usr/local/lib/lbsync/lbsync-apply.sh}
state_dir=${LBSYNC_AGENT_STATE_DIR:-/var/lib/lbsync}
timeout_sec=60
idle_sec=5
max_backoff=60
pid_file=
max_runtime=0

die() {
  lb_log "$*"
  exit 2
}
log() {
  lb_log "$*"
}

while [ $# -gt 0 ]; do
  case $1 in
    --metadata-url) md_url=${2:-}; shift 2 ;;
    --apply) apply_script=${2:-}; shift 2 ;;
    --state-dir) state_dir=${2:-}; shift 2 ;;
    --timeout-sec) timeout_sec=${2:-}; shift 2 ;;
    --idle) idle_sec=${2:-}; shift 2 ;;
    --max-backoff) max_backoff=${2:-}; shift 2 ;;
    --pid-file) pid_file=${2:-}; shift 2 ;;
    --max-runtime) max_runtime=${2:-}; shift 2 ;;
    --help | -h)
      cat <<'LB_EOF'
Usage: lbsync-gcp-agent.sh [--metadata-url URL] [--apply PATH] [--state-dir DIR]
         [--timeout-sec N] [--idle N] [--max-backoff N] [--pid-file PATH]
         [--max-runtime N]
Long-polls the lbsync-manifest metadata key, runs lbsync-apply.sh on each new
generation and writes its result to guest attribute lbsync/result (and the
live state to lbsync/status). Environment: LBSYNC_METADATA_URL,
LBSYNC_APPLY_SCRIPT, LBSYNC_AGENT_STATE_DIR.
LB_EOF
      exit 0
      ;;
    *) die "unknown argument: $1" ;;
  esac
done

case $md_url in
  http://* | https://*) ;;
  *) die "--metadata-url must be an http(s) URL" ;;
esac
case $md_url in
  *[!A-Za-z0-9.:/_-]*) die "--metadata-url has unexpected characters" ;;
esac
for n in "$timeout_sec" "$idle_sec" "$max_backoff" "$max_runtime"; do
  lb_is_uint "$n" || die "numeric options take whole seconds"
done
[ -r "$apply_script" ] || die "apply script not readable: $apply_script"

agent_dir=$state_dir/gcp-agent
mkdir -p "$agent_dir" || die "cannot create $agent_dir"
last_file=$agent_dir/last-generation
args_file=$agent_dir/apply-args
# Named after our pid: a restarted agent removes what a killed one left.
lb_sweep "$agent_dir" tmp
tmp=$agent_dir/tmp.$$
rm -rf "$tmp"
mkdir -m 700 "$tmp" || die "cannot create $tmp"
curl_pid=

cleanup() {
  if [ -n "$curl_pid" ]; then kill "$curl_pid" 2>/dev/null; fi
  rm -rf "$tmp"
  if [ -n "$pid_file" ]; then rm -f "$pid_file"; fi
}
trap 'cleanup; exit 0' TERM INT HUP
trap cleanup EXIT
if [ -n "$pid_file" ]; then printf '%s\n' "$$" >"$pid_file"; fi

lb_now_ms
started=$lb_ms
attr_url=$md_url/computeMetadata/v1/instance/attributes
guest_url=$md_url/computeMetadata/v1/instance/guest-attributes/lbsync

# fetch URL OUT [HEADERS]: sets $fetched to the HTTP status (000 when
# unreachable). Not called in $(...): curl runs in the background of this
# shell, so a TERM during a long poll is handled at once (the trap kills it).
fetched=000
fetch() {
  _hdr=${3:-/dev/null}
  curl -sS --noproxy '*' -H 'Metadata-Flavor: Google' --max-time $((timeout_sec + 10)) \
    -o "$2" -D "$_hdr" -w '%{http_code}' "$1" >"$tmp/code" 2>"$tmp/curl-err" &
  curl_pid=$!
  wait "$curl_pid"
  curl_pid=
  fetched=$(cat "$tmp/code" 2>/dev/null)
  case $fetched in
    [0-9][0-9][0-9]) ;;
    *) fetched=000 ;;
  esac
}

# nap SECONDS: sleep in the background so a TERM is handled at once.
nap() {
  sleep "$1" &
  curl_pid=$!
  wait "$curl_pid"
  curl_pid=
}

# put_guest KEY FILE: write a guest attribute, retrying a few times.
put_guest() {
  _i=0
  while [ "$_i" -lt 5 ]; do
    _code=$(curl -sS --noproxy '*' -H 'Metadata-Flavor: Google' --max-time 10 -X PUT \
      --data-binary "@$2" -o /dev/null -w '%{http_code}' "$guest_url/$1" 2>/dev/null)
    case $_code in
      2??) return 0 ;;
    esac
    _i=$((_i + 1))
    nap "$_i"
  done
  log "could not write guest attribute lbsync/$1 (last status $_code)"
  return 1
}

# The arguments lbsync-apply.sh gets: the last manifest's, kept in
# $args_file as validated `arg=` lines, else none (the script's defaults).
# Flags must be ones a transport may set (core/apply-contract.ts
# TRANSPORT_APPLY_FLAGS) and values plain words, so a manifest can never
# point the script at another binary (--haproxy) or payload.
valid_args() {
  _want=flag
  while IFS= read -r _l; do
    case $_l in arg=*) ;; *) continue ;; esac
    _v=${_l#arg=}
    if [ "$_want" = flag ]; then
      case $_v in
        --config | --state-dir | --reload | --master-socket | --runtime-socket | --removal-timeout) ;;
        *) return 1 ;;
      esac
      _want=value
    else
      lb_is_plain_path "$_v" || return 1
      case $_v in -*) return 1 ;; esac
      _want=flag
    fi
  done <"$1"
  [ "$_want" = flag ]
}
# load_args MANIFEST: take its arguments (or, from an older function, its
# config=/state-dir=/reload=/master-socket= keys) when they are valid.
load_args() {
  if grep -q '^arg=' "$1"; then
    grep '^arg=' "$1" >"$tmp/args"
  else
    : >"$tmp/args"
    for _k in config state-dir reload master-socket; do
      _v=$(sed -n "s/^$_k=//p" "$1" | head -n 1)
      if [ -n "$_v" ]; then printf 'arg=--%s\narg=%s\n' "$_k" "$_v" >>"$tmp/args"; fi
    done
  fi
  if valid_args "$tmp/args"; then
    mv -f "$tmp/args" "$args_file.tmp" && mv -f "$args_file.tmp" "$args_file"
  else
    log "manifest arguments rejected; keeping the previous ones"
  fi
}

# run_apply ARGS...: lbsync-apply.sh with $args_file's arguments, then ARGS.
run_apply() {
  _extra=$#
  if [ -f "$args_file" ] && valid_args "$args_file"; then
    while IFS= read -r _l; do
      case $_l in arg=*) set -- "$@" "${_l#arg=}" ;; esac
    done <"$args_file"
  fi
  # Move the extra arguments (given first) behind the manifest's.
  while [ "$_extra" -gt 0 ]; do
    set -- "$@" "$1"
    shift
    _extra=$((_extra - 1))
  done
  sh "$apply_script" "$@"
}

publish_status() {
  run_apply --status >"$tmp/status-out" 2>/dev/null
  tail -n 1 "$tmp/status-out" >"$tmp/status"
  put_guest status "$tmp/status"
}

# result_line RESULT GENERATION MESSAGE: a result in the apply script's format,
# for failures that happen before the apply script runs.
result_line() {
  lb_apply_result "$1" "$2" "" 0 0 "$3"
  lb_json_print >"$tmp/result"
  put_guest result "$tmp/result"
}

last_generation() {
  _g=$(cat "$last_file" 2>/dev/null)
  if lb_is_uint "$_g"; then printf '%s' "$_g"; else printf '0'; fi
}

# give_up_or_retry GENERATION MESSAGE: a torn read (a newer push replaced the
# keys mid-read) heals on the next read; the same failure three times for one
# generation is reported as invalid and that generation is not tried again.
bad_gen=0
bad_count=0
give_up_or_retry() {
  if [ "$1" = "$bad_gen" ]; then bad_count=$((bad_count + 1)); else bad_gen=$1; bad_count=1; fi
  if [ "$bad_count" -ge 3 ]; then
    printf '%s\n' "$1" >"$last_file.tmp" && mv "$last_file.tmp" "$last_file"
    result_line invalid "$1" "$2"
    return 0
  fi
  nap 1
  return 1
}

# handle_manifest: returns 0 when done with this manifest, 1 to poll again at once.
handle_manifest() {
  _m=$tmp/manifest
  grep -qx 'lbsync-gcp=1' "$_m" || {
    log "manifest without lbsync-gcp=1; ignored"
    return 0
  }
  _gen=$(sed -n 's/^generation=\([0-9]*\)$/\1/p' "$_m")
  _sha=$(sed -n 's/^sha256=\([0-9a-f]\{64\}\)$/\1/p' "$_m")
  _chunks=$(sed -n 's/^chunks=\([0-9]*\)$/\1/p' "$_m")
  if ! lb_is_uint "$_gen" || [ -z "$_sha" ] || ! lb_is_uint "$_chunks" || [ "$_chunks" -lt 1 ] ||
    [ "$_chunks" -gt 64 ]; then
    log "malformed manifest; ignored"
    return 0
  fi
  _last=$(last_generation)
  if [ "$_gen" -le "$_last" ]; then
    log "generation $_gen already handled (last $_last); nothing to do"
    return 0
  fi
  : >"$tmp/payload"
  _i=0
  while [ "$_i" -lt "$_chunks" ]; do
    _want=$(sed -n "s/^chunk\\.$_i=\\([0-9a-f]\\{64\\}\\)\$/\\1/p" "$_m")
    fetch "$attr_url/lbsync-payload-$_i" "$tmp/chunk"
    _code=$fetched
    _got=$(sha256sum "$tmp/chunk" 2>/dev/null | cut -c1-64)
    if [ "$_code" != 200 ] || [ -z "$_want" ] || [ "$_got" != "$_want" ]; then
      # Most likely a newer push replaced the keys while we read them: poll
      # again; a newer manifest is then already waiting.
      log "chunk $_i of generation $_gen: status $_code, sha256 mismatch or missing; re-reading"
      give_up_or_retry "$_gen" "chunk $_i of the payload is missing or does not match its sha256"
      return $?
    fi
    cat "$tmp/chunk" >>"$tmp/payload"
    _i=$((_i + 1))
  done
  _got=$(sha256sum "$tmp/payload" | cut -c1-64)
  if [ "$_got" != "$_sha" ]; then
    log "payload sha256 mismatch for generation $_gen; re-reading"
    give_up_or_retry "$_gen" "the payload does not match its sha256"
    return $?
  fi
  load_args "$_m"
  # Recorded before the apply runs: a payload that crashes the VM mid-apply
  # is not replayed forever; the next push or resync carries a newer one.
  printf '%s\n' "$_gen" >"$last_file.tmp" && mv "$last_file.tmp" "$last_file"
  log "applying generation $_gen ($_chunks chunk(s))"
  run_apply --payload "$tmp/payload" >"$tmp/apply-out" 2>"$tmp/apply-err"
  _rc=$?
  grep '^{.*"lbsync"' "$tmp/apply-out" | tail -n 1 >"$tmp/result"
  if [ ! -s "$tmp/result" ]; then
    _msg=$(tail -n 1 "$tmp/apply-err" | tr -cd 'A-Za-z0-9 ._:/-' | cut -c1-200)
    result_line failed "$_gen" "apply script exited $_rc without a result: $_msg"
  else
    put_guest result "$tmp/result"
  fi
  log "generation $_gen: exit $_rc $(cat "$tmp/result")"
  publish_status
  return 0
}

publish_status
etag=NONE
backoff=1
log "watching $attr_url/lbsync-manifest"
while :; do
  lb_now_ms
  if [ "$max_runtime" -gt 0 ] && [ $((lb_ms - started)) -ge $((max_runtime * 1000)) ]; then
    log "max runtime reached; exiting"
    exit 0
  fi
  fetch "$attr_url/lbsync-manifest?wait_for_change=true&last_etag=$etag&timeout_sec=$timeout_sec" \
    "$tmp/manifest" "$tmp/headers"
  case $fetched in
    200)
      backoff=1
      new=$(sed -n 's/^[Ee][Tt][Aa][Gg]: *\([A-Za-z0-9_-]\{1,128\}\).*$/\1/p' "$tmp/headers" | head -n 1)
      if handle_manifest; then
        etag=${new:-NONE}
      else
        etag=NONE
      fi
      ;;
    404)
      # No push yet (or the keys were removed): check again later.
      backoff=1
      etag=NONE
      nap "$idle_sec"
      ;;
    *)
      log "metadata server answered $fetched $(head -c 200 "$tmp/curl-err" 2>/dev/null); retrying in ${backoff}s"
      nap "$backoff"
      backoff=$((backoff * 2))
      if [ "$backoff" -gt "$max_backoff" ]; then backoff=$max_backoff; fi
      ;;
  esac
done
