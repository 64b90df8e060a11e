#!/usr/bin/env bash
# Test infrastructure for geonox's container backend, on Debian 12 as root.
#
#   - Debian packages: docker.io debootstrap qemu-user-static binfmt-support docker-registry,
#     and llvm (llvm-strip: the zig backend strips aarch64 binaries with it)
#   - dockerd running (background; log /var/log/geonox-dockerd.log)
#   - binfmt_misc mounted, qemu-aarch64 registered with the F (fix-binary) flag, so arm64
#     containers run through the host's qemu-aarch64-static
#   - a local registry (distribution v2) on 127.0.0.1:5000, storage in the test cache
#
# Idempotent and fast when everything already answers.  Daemons it starts are detached
# (setsid) and outlive this script, not the machine.  No systemd needed.
#
# Environment:
#   GEONOX_TEST_IMAGE_CACHE  cache dir (default ~/.cache/geonox-test); registry storage
#                            lives in its registry/ subdirectory
set -euo pipefail

CACHE=${GEONOX_TEST_IMAGE_CACHE:-${HOME:-/root}/.cache/geonox-test}
REGISTRY_ADDR=127.0.0.1:5000
DOCKER=/usr/bin/docker            # docker.io's client (BuildKit built in); not /usr/local/bin/docker
DOCKERD_LOG=/var/log/geonox-dockerd.log
REGISTRY_LOG=/var/log/geonox-registry.log
BINFMT=/proc/sys/fs/binfmt_misc

say() { echo "ci_setup: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (apt-get, dockerd, binfmt_misc)"

# ---------------------------------------------------------------- packages
need=()
# pkg-config: tests/data/twomod finds SQLite through it, as many real projects do
for pkg in docker.io debootstrap qemu-user-static binfmt-support docker-registry llvm pkg-config; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d: don't let the maintainer scripts try to start services (no systemd here)
  rc=/usr/sbin/policy-rc.d; made_rc=0
  if [ ! -e "$rc" ]; then printf '#!/bin/sh\nexit 101\n' >"$rc"; chmod +x "$rc"; made_rc=1; fi
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || { [ $made_rc = 1 ] && rm -f "$rc"; die "apt-get install ${need[*]} failed"; }
  [ $made_rc = 1 ] && rm -f "$rc"
fi

# ---------------------------------------------------------------- dockerd
if ! "$DOCKER" info >/dev/null 2>&1; then
  if ! pgrep -x dockerd >/dev/null; then
    say "starting dockerd (log $DOCKERD_LOG)"
    setsid nohup /usr/sbin/dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
  fi
  for _ in $(seq 60); do
    "$DOCKER" info >/dev/null 2>&1 && break
    sleep 1
  done
  "$DOCKER" info >/dev/null 2>&1 || { tail -n 20 "$DOCKERD_LOG" >&2 || true; die "dockerd did not answer within 60 s"; }
fi

# ---------------------------------------------------------------- binfmt / qemu-aarch64
if [ "$(uname -m)" != aarch64 ]; then
  if ! mountpoint -q "$BINFMT"; then
    mount -t binfmt_misc binfmt_misc "$BINFMT" || die "cannot mount binfmt_misc at $BINFMT"
  fi
  binfmt_ok() { [ -r "$BINFMT/qemu-aarch64" ] && grep -qx enabled "$BINFMT/qemu-aarch64" \
                && grep -q '^flags:.*F' "$BINFMT/qemu-aarch64"; }
  if ! binfmt_ok; then
    # A registration without F (e.g. binfmt-support's old default) is useless in containers:
    # the interpreter path does not exist inside them.  Replace it.
    [ -e "$BINFMT/qemu-aarch64" ] && echo -1 >"$BINFMT/qemu-aarch64"
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
    if ! binfmt_ok; then
      [ -e "$BINFMT/qemu-aarch64" ] && echo -1 >"$BINFMT/qemu-aarch64"
      conf=/usr/lib/binfmt.d/qemu-aarch64.conf
      [ -r "$conf" ] || die "$conf missing (qemu-user-static)"
      # the conf line is exactly the register format ':name:M::magic:mask:interp:flags'
      grep -v '^#' "$conf" | head -n 1 >"$BINFMT/register" || die "registering qemu-aarch64 failed"
    fi
    binfmt_ok || die "qemu-aarch64 not enabled with the F flag in $BINFMT/qemu-aarch64"
  fi
fi

# ---------------------------------------------------------------- local registry
if ! curl -fsS -o /dev/null "http://$REGISTRY_ADDR/v2/" 2>/dev/null; then
  mkdir -p "$CACHE/registry/data"
  cfg=$CACHE/registry/config.yml
  cat >"$cfg" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $CACHE/registry/data
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
EOF
  if ! pgrep -f "^/usr/bin/docker-registry serve $cfg" >/dev/null; then
    say "starting registry on $REGISTRY_ADDR (storage $CACHE/registry/data, log $REGISTRY_LOG)"
    setsid nohup /usr/bin/docker-registry serve "$cfg" >>"$REGISTRY_LOG" 2>&1 </dev/null &
  fi
  for _ in $(seq 30); do
    curl -fsS -o /dev/null "http://$REGISTRY_ADDR/v2/" 2>/dev/null && break
    sleep 0.5
  done
  curl -fsS -o /dev/null "http://$REGISTRY_ADDR/v2/" \
    || { tail -n 20 "$REGISTRY_LOG" >&2 || true; die "registry did not answer on $REGISTRY_ADDR"; }
fi

say "ok: dockerd ($DOCKER), binfmt qemu-aarch64, registry $REGISTRY_ADDR"
