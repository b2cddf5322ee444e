#!/usr/bin/env bash
# Print the name of a Python base image that exists locally, making one if needed:
# python:3.12-slim when it can be pulled, otherwise a Debian bookworm image built with debootstrap.
# Idempotent: an image that already exists is reused.
set -euo pipefail

PREFERRED="${BASE_IMAGE:-python:3.12-slim}"
OFFLINE="local/python-base:bookworm"

if docker image inspect "$PREFERRED" >/dev/null 2>&1; then echo "$PREFERRED"; exit 0; fi
if docker image inspect "$OFFLINE" >/dev/null 2>&1; then echo "$OFFLINE"; exit 0; fi
if timeout 60 docker pull -q "$PREFERRED" >/dev/null 2>&1; then echo "$PREFERRED"; exit 0; fi

echo "setup: $PREFERRED cannot be pulled; building the offline base $OFFLINE with debootstrap (about a minute)..." >&2
if ! command -v debootstrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  else
    echo "error: cannot pull $PREFERRED and debootstrap is missing; pull a Python image and pass BASE_IMAGE=<it>" >&2
    exit 1
  fi
fi
rootfs="$(mktemp -d)"
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
  bookworm "$rootfs" http://deb.debian.org/debian >&2
# The host may reach PyPI through a TLS-intercepting proxy: carry the host's CA bundle.
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
tar -C "$rootfs" -c . | docker import \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'ENV LANG=C.UTF-8' \
  - "$OFFLINE" >/dev/null
echo "$OFFLINE"
