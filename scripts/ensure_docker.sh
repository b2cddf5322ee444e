#!/usr/bin/env bash
# Make a Docker engine answer: use the one that does; otherwise, as root on Debian/Ubuntu,
# install docker.io and start dockerd ourselves (no systemd on CI machines); otherwise say how to get one.
set -euo pipefail

if docker info >/dev/null 2>&1; then
  exit 0
fi
if ! command -v docker >/dev/null 2>&1 && [ "$(id -u)" != 0 ]; then
  echo "error: no docker client and no engine; install Docker (https://docs.docker.com/engine/install/) or set DOCKER_HOST" >&2
  exit 1
fi
if [ -n "${DOCKER_HOST:-}" ]; then
  echo "error: DOCKER_HOST=$DOCKER_HOST does not answer 'docker info'; start that engine or unset DOCKER_HOST" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "error: no Docker engine answers; start Docker (e.g. 'sudo systemctl start docker') or set DOCKER_HOST" >&2
  exit 1
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "setup: installing the Docker engine (docker.io)..." >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
echo "setup: starting dockerd (log: /var/log/dockerd.log)..." >&2
# --iptables=false: these machines have no NAT rules to manage; containers are reached
# through ports published on 127.0.0.1 only.
setsid dockerd --iptables=false --ip6tables=false >/var/log/dockerd.log 2>&1 < /dev/null &
for _ in $(seq 1 120); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 0.5
done
echo "error: dockerd did not come up in 60 s; see /var/log/dockerd.log" >&2
exit 1
