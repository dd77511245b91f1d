#!/bin/sh
# Installs what the demo and the tests need on a fresh Debian/Ubuntu machine,
# or stops naming exactly what is missing. Safe to run repeatedly.
set -eu
cd "$(dirname "$0")/.."

fail() { echo "lbsync setup: $*" >&2; exit 1; }

command -v node >/dev/null 2>&1 || fail "Node.js >= 20 is required (https://nodejs.org or your package manager)"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || fail "Node.js >= 20 is required, found $(node --version)"

# npm packages: install when missing or when the lock file changed since.
# `npm install`, not `npm ci`: the registry these machines reach lacks some
# other-platform optional packages (biome's darwin/win32/musl binaries), which
# npm leaves out of the lock file and `npm ci` then refuses as out of sync.
# `npm install` still installs exactly the locked versions.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "lbsync setup: installing npm packages (npm install)" >&2
  npm install --no-audit --no-fund >&2 || fail "npm install failed (is the npm registry reachable?)"
fi

# System tools: haproxy (the LB), socat (master socket), curl (staged payloads),
# unshare/nsenter (util-linux; the tests' fake LB VMs), openssl (the fake
# clusters' and clouds' test-time certificates), kubectl (cross-checks the
# Kubernetes API fake's wire format).
missing=""
for tool in haproxy socat curl flock unshare nsenter gzip base64 sha256sum openssl kubectl; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing="$missing $tool"
done
if [ -n "$missing" ]; then
  pkgs=""
  for t in $missing; do
    case "$t" in
      haproxy) pkgs="$pkgs haproxy" ;;
      socat) pkgs="$pkgs socat" ;;
      curl) pkgs="$pkgs curl" ;;
      flock|unshare|nsenter) pkgs="$pkgs util-linux" ;;
      gzip) pkgs="$pkgs gzip" ;;
      openssl) pkgs="$pkgs openssl" ;;
      kubectl) pkgs="$pkgs kubernetes-client" ;;
      *) pkgs="$pkgs coreutils" ;;
    esac
  done
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "lbsync setup: installing$pkgs with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || fail "apt-get update failed"
    # shellcheck disable=SC2086
    apt-get install -y -qq $pkgs >&2 || fail "apt-get install$pkgs failed"
  else
    fail "missing:$missing. Install them with: sudo apt-get install -y$pkgs"
  fi
fi
case "$PATH" in *"/usr/sbin"*) ;; *) echo "lbsync setup: note: /usr/sbin is not on PATH; haproxy is looked up there too" >&2 ;; esac
