# lbsync-lib.sh - helpers shared by the LB-side scripts (lbsync-apply.sh,
# lbsync-drain.sh, lbsync-gcp-agent.sh). It is not shipped on its own:
# core/lb-scripts.ts (and `npm run build`) inline it into each script between
# the "lbsync-lib" markers, so what reaches an LB is one self-contained file.
#
# Conventions: every name starts with lb_ (functions) or lb_ / _lb_
# (variables). Functions that produce a value set a variable instead of
# printing it: in dash, $(f) forks a subshell, and these helpers run in
# loops where forks are the cost that matters.

# lb_prog names the script in log lines; each script sets it before use.
lb_prog=${lb_prog:-lbsync}

lb_log() {
  printf '%s: %s\n' "$lb_prog" "$*" >&2
}

# ---- time ------------------------------------------------------------------
# lb_now_ms: sets lb_ms to a monotonic millisecond clock. /proc/uptime is read
# with the read builtin (no fork; 10 ms resolution); without it, date(1).
lb_now_ms() {
  if read -r _lb_up _lb_idle 2>/dev/null </proc/uptime; then
    case $_lb_up in
      *.??) _lb_up=${_lb_up%.*}${_lb_up#*.}0 ;;
      *) _lb_up= ;;
    esac
  else
    _lb_up=
  fi
  case $_lb_up in
    '' | *[!0-9]*) _lb_up=$(date +%s%3N 2>/dev/null) ;;
  esac
  case $_lb_up in
    '' | *[!0-9]*) _lb_up=0 ;;
  esac
  # Leading zeros would make sh arithmetic read the number as octal.
  while :; do
    case $_lb_up in
      0?*) _lb_up=${_lb_up#0} ;;
      *) break ;;
    esac
  done
  lb_ms=$_lb_up
}

# lb_sleep SECONDS: sleep(1) with fractional seconds, its lock fd closed so a
# killed script's children never hold the apply lock.
lb_sleep() {
  sleep "$1" 9>&-
}

# ---- pattern checks (never eval input; only compare against patterns) ------
# Digits only, no leading zero (sh arithmetic reads 010 as octal), at most 16
# digits (every JS safe integer fits; sh arithmetic never overflows).
lb_is_uint() {
  case ${1:-} in
    '' | *[!0-9]* | 0?*) return 1 ;;
  esac
  [ "${#1}" -le 16 ]
}

lb_is_sha256() {
  case ${1:-} in
    *[!0-9a-f]*) return 1 ;;
  esac
  [ "${#1}" -eq 64 ]
}

# Paths reach socat's address syntax, where , : ! and quotes are special.
lb_is_plain_path() {
  case ${1:-} in
    '' | *[!A-Za-z0-9._/@+-]*) return 1 ;;
  esac
  return 0
}

# HAProxy server and backend names as lbsync renders them.
lb_is_name() {
  case ${1:-} in
    '' | *[!A-Za-z0-9._:-]*) return 1 ;;
  esac
  return 0
}

# ---- JSON --------------------------------------------------------------------
# lb_json_escape STRING: sets lb_esc to STRING as the inside of a JSON string
# literal. Control characters become spaces; \ and " are escaped. A string
# without any of them (every status message lbsync writes) costs no loop.
lb_json_escape() {
  _lb_s=$1
  case $_lb_s in
    *[\\\"[:cntrl:]]*) ;;
    *)
      lb_esc=$_lb_s
      return 0
      ;;
  esac
  _lb_o=
  while :; do
    case $_lb_s in
      *[[:cntrl:]]*) ;;
      *) break ;;
    esac
    _lb_p=${_lb_s%%[[:cntrl:]]*}
    _lb_o="$_lb_o$_lb_p "
    _lb_s=${_lb_s#"$_lb_p"?}
  done
  _lb_s=$_lb_o$_lb_s
  _lb_o=
  while :; do
    case $_lb_s in
      *[\\\"]*) ;;
      *) break ;;
    esac
    _lb_p=${_lb_s%%[\\\"]*}
    _lb_s=${_lb_s#"$_lb_p"}
    _lb_c=${_lb_s%"${_lb_s#?}"}
    _lb_s=${_lb_s#?}
    _lb_o="$_lb_o$_lb_p\\$_lb_c"
  done
  lb_esc=$_lb_o$_lb_s
}

# A JSON object built field by field in lb_json: lb_json_start, then
# lb_json_num KEY DIGITS / lb_json_str KEY TEXT, then lb_json_print.
# Numbers are the caller's validated digits; keys are literals.
lb_json_start() {
  lb_json=
}
lb_json_num() {
  lb_json="$lb_json${lb_json:+,}\"$1\":$2"
}
lb_json_str() {
  lb_json_escape "$2"
  lb_json="$lb_json${lb_json:+,}\"$1\":\"$lb_esc\""
}
lb_json_print() {
  printf '{%s}\n' "$lb_json"
}

# lb_clip TEXT MAX: sets lb_clipped to TEXT cut to at most MAX bytes. Short
# text (the usual case) costs no fork.
lb_clip() {
  if [ "${#1}" -le "$2" ]; then
    lb_clipped=$1
  else
    lb_clipped=$(printf '%s' "$1" | head -c "$2")
  fi
}

# ---- the apply result line (core/apply-contract.ts parses it) --------------
# lb_apply_result RESULT GENERATION SHA256 SERVERS MS MESSAGE: starts lb_json
# with the fields every apply result has; callers add optional fields
# (lb_json_num/lb_json_str) and print it with lb_json_print. The message is
# clipped so the whole line stays far below Azure Run Command's 4,096-byte
# output tail even when escaping doubles it.
lb_apply_result() {
  lb_json_start
  lb_json_num lbsync 1
  lb_json_str result "$1"
  lb_json_num generation "$2"
  lb_json_str sha256 "$3"
  lb_json_num servers "$4"
  lb_json_num ms "$5"
  lb_clip "${6:-}" 1024
  lb_json_escape "$lb_clipped"
  if [ "${#lb_esc}" -gt 1200 ]; then lb_clip "$lb_clipped" 600; fi
  lb_json_str message "$lb_clipped"
}

# lb_apply_exit_code RESULT: sets lb_code to the documented exit code.
lb_apply_exit_code() {
  case $1 in
    applied | unchanged | stale | status) lb_code=0 ;;
    invalid) lb_code=2 ;;
    rejected) lb_code=3 ;;
    rolled-back) lb_code=4 ;;
    failed) lb_code=5 ;;
    busy) lb_code=6 ;;
    refused) lb_code=7 ;;
    *) lb_code=5 ;;
  esac
}

# ---- HAProxy sockets -----------------------------------------------------------
# lb_cli SOCKET: send stdin (one or more commands) to an HAProxy CLI socket,
# print the answer. -t bounds the wait for the answer after our input ends
# (a batch of runtime commands can take a while on a big backend), -T the
# silence; socat exits as soon as HAProxy closes, so neither is a sleep.
lb_cli() {
  socat -t 30 -T 10 - "UNIX-CONNECT:$1" 2>/dev/null 9>&-
}

# lb_cli_retry SOCKET: like lb_cli, but keeps trying to connect for about a
# second (every 5 ms, inside socat: no sleep forks), for a master CLI that is
# re-executing itself during a reload.
lb_cli_retry() {
  socat -t 10 -T 10 - "UNIX-CONNECT:$1,retry=200,interval=0.005" 2>/dev/null 9>&-
}

# lb_show_proc SOCKET FILE: reads the master CLI's `show proc` (through FILE,
# so no command substitution forks) into lb_reloads (the master's reload
# counter), lb_failed (failed reloads) and lb_fresh (workers forked by the
# latest reload). Fails when the master does not answer.
lb_show_proc() {
  lb_reloads=
  lb_failed=
  lb_fresh=0
  lb_cli_retry "$1" >"$2" <<'LB_EOF'
show proc
LB_EOF
  while read -r _lb_pid _lb_type _lb_rel _lb_f1 _lb_f2 _lb_rest; do
    case $_lb_type in
      master)
        lb_reloads=$_lb_rel
        if [ "$_lb_f1" = '[failed:' ]; then lb_failed=${_lb_f2%]}; fi
        ;;
      worker)
        if [ "$_lb_rel" = 0 ]; then lb_fresh=$((lb_fresh + 1)); fi
        ;;
    esac
  done <"$2"
  case $lb_reloads in '' | *[!0-9]*) return 1 ;; esac
  case $lb_failed in '' | *[!0-9]*) lb_failed=0 ;; esac
  return 0
}

# ---- temp files ----------------------------------------------------------------
# lb_sweep DIR KIND...: remove DIR/<kind>.<pid> entries whose process is
# gone, such as the temp dir of an apply (or of a Run Command wrapper) that
# was killed with SIGKILL and never ran its EXIT trap. kill -0 is a builtin;
# every LB-side script runs as root, so it never fails for lack of rights.
lb_sweep() {
  _lb_dir=$1
  shift
  for _lb_kind in "$@"; do
    for _lb_e in "$_lb_dir/$_lb_kind".[0-9]*; do
      [ -e "$_lb_e" ] || continue
      _lb_p=${_lb_e##*.}
      case $_lb_p in '' | *[!0-9]*) continue ;; esac
      [ "$_lb_p" = "$$" ] && continue
      if kill -0 "$_lb_p" 2>/dev/null; then
        # A killed process nobody has reaped yet (a zombie) is gone too.
        _lb_st=
        read -r _lb_x _lb_y _lb_st _lb_rest 2>/dev/null <"/proc/$_lb_p/stat" || :
        [ "$_lb_st" = Z ] || continue
      fi
      rm -rf "$_lb_e"
    done
  done
}
