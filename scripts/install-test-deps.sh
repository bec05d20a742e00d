#!/usr/bin/env bash
# Installs the Debian peers the tests run against (skopeo, podman, umoci, docker-registry,
# busybox for test images, runc and crun, tini for --init, Ceph RGW for real S3, iproute2 and iptables for the bridge network). Only what is missing; needs root.
set -euo pipefail

declare -A need=(
  [skopeo]=skopeo [podman]=podman [umoci]=umoci [docker-registry]=docker-registry
  [busybox]=busybox-static [runc]=runc [crun]=crun [radosgw]=radosgw [ceph-mon]=ceph-mon [ceph-osd]=ceph-osd [ceph]=ceph-common
)
need[ip]=iproute2 need[iptables]=iptables # the runtime's bridge network (runtime/network.ts)
need[tini-static]=tini # run --init (a static tini at /dev/init), as docker's docker-init
need[zstd]=zstd # zstd layers: test/runtime/zstd.test.ts makes its blobs with it, and the runtime prefers it to its pure-JS decoder
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "install-test-deps: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
  exit 1
fi
echo "install-test-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Keep package postinst scripts from starting services (docker-registry would take :5000).
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
