#!/usr/bin/env bash
# A second Docker engine on this machine that cannot see the client's files: the test engine for remote-engine
# support (docs/remote-engine.md). Needs root, dockerd, unshare (util-linux) and ip (iproute2).
#
#   bash scripts/remote_engine.sh start [IMAGE...]  start it (idempotent), then load each IMAGE from the main
#                                                   engine into it unless it holds that image id already
#   bash scripts/remote_engine.sh stop              stop it (idempotent); its data root is kept for the next start
#   bash scripts/remote_engine.sh host              print its DOCKER_HOST (tcp://127.0.0.1:PORT)
#
# The engine runs in its own mount namespace where tmpfs hides /tmp, /var/tmp, /root, /home and the folder that
# holds this checkout (and the main engine's /run/containerd), so a bind mount of a client path shows an empty
# dir there. It has its own data root, exec root, pid file, cgroup parent, bridge (smemu0, 10.213.255.1/24) and
# address pool (10.213.0.0/17), and listens on 127.0.0.1 only. It shares this machine's network namespace, so a
# port it publishes on 127.0.0.1 is this machine's 127.0.0.1 too.
# Settings: SM_EMULATOR_REMOTE_ENGINE_PORT (default 23751), SM_EMULATOR_REMOTE_ENGINE_ROOT (default
# /var/lib/sm-emulator-remote-engine).
set -euo pipefail

PORT="${SM_EMULATOR_REMOTE_ENGINE_PORT:-23751}"
DATA="${SM_EMULATOR_REMOTE_ENGINE_ROOT:-/var/lib/sm-emulator-remote-engine}"
EXEC_ROOT=/run/sm-emulator-remote-engine
PIDFILE="$EXEC_ROOT/dockerd.pid"
LOG=/var/log/sm-emulator-remote-engine.log
BRIDGE=smemu0
HOST="tcp://127.0.0.1:$PORT"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

answers() { DOCKER_HOST="$HOST" docker info >/dev/null 2>&1; }

running_pid() {
  local pid
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

start() {
  if answers; then return 0; fi
  if [ "$(id -u)" != 0 ]; then
    echo "error: the test engine needs root (a mount namespace, a bridge); run as root or use a real remote engine" >&2
    exit 1
  fi
  for tool in dockerd unshare ip; do
    command -v "$tool" >/dev/null || { echo "error: $tool is missing; install docker.io, util-linux, iproute2" >&2; exit 1; }
  done
  if [ -n "$(running_pid)" ]; then
    echo "error: dockerd $(running_pid) of the test engine runs but $HOST does not answer; run '$0 stop' first" >&2
    exit 1
  fi
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    ip addr add 10.213.255.1/24 dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up
  mkdir -p "$DATA" "$EXEC_ROOT"
  # A dockerd that finds its old default "bridge" network while --default-address-pool is set deletes the
  # interface named docker0 (moby's removeDefaultBridgeInterface): in this shared network namespace that is the
  # MAIN engine's bridge. Starting without the old network state (networks only; images and volumes stay) means
  # there is no old "bridge" network, so docker0 is never touched.
  rm -rf "$DATA/network"
  # What the namespace hides: the client's temp dirs, homes, and the folder around this checkout.
  local around
  around="$(dirname "$REPO")"
  [ "$around" = / ] && around="$REPO"
  local hide=(/tmp /var/tmp /root /home "$around" /run/containerd)
  local mounts=""
  for dir in "${hide[@]}"; do
    [ -d "$dir" ] && mounts+="mount -t tmpfs -o mode=1777 tmpfs '$dir'; "
  done
  setsid unshare --mount --propagation private sh -c "$mounts exec dockerd \
    --host '$HOST' --data-root '$DATA' --exec-root '$EXEC_ROOT' --pidfile '$PIDFILE' \
    --bridge '$BRIDGE' --default-address-pool base=10.213.0.0/17,size=24 --cgroup-parent /sm-emulator-remote \
    --iptables=false --ip6tables=false --ip=127.0.0.1" >"$LOG" 2>&1 </dev/null &
  for _ in $(seq 1 120); do
    if answers; then return 0; fi
    sleep 0.25
  done
  echo "error: the test engine did not answer at $HOST within 30 s; see $LOG" >&2
  exit 1
}

load() {
  # docker save | docker load through the API: offline, only what the test engine lacks, in one stream (the
  # layers images share, such as their base, travel once).
  local image want missing=()
  for image in "$@"; do
    want="$(docker image inspect --format '{{.Id}}' "$image")" || {
      echo "error: image $image is not on the main engine; build it first" >&2
      exit 1
    }
    if [ "$(DOCKER_HOST="$HOST" docker image inspect --format '{{.Id}}' "$image" 2>/dev/null)" != "$want" ]; then
      missing+=("$image")
    fi
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    docker save "${missing[@]}" | DOCKER_HOST="$HOST" docker load -q >/dev/null
  fi
}

stop() {
  local pid
  pid="$(running_pid)"
  if [ -n "$pid" ]; then
    kill -TERM "$pid"
    for _ in $(seq 1 120); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "error: dockerd $pid of the test engine did not stop within 30 s; see $LOG" >&2
      exit 1
    fi
  fi
  if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link delete "$BRIDGE"; fi
}

case "${1:-}" in
  start) shift; start; load "$@" ;;
  stop) stop ;;
  host) echo "$HOST" ;;
  *) echo "usage: $0 start [IMAGE...] | stop | host" >&2; exit 2 ;;
esac
