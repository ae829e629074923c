#!/usr/bin/env bash
# Installs what the VFIO VM test (make vfio-vm-test) needs and is missing: QEMU from Debian's
# packages, and the Debian kernel that linux-image-amd64 currently depends on, downloaded with
# apt-get and unpacked with dpkg -x into DIR/kernel (default build/vm). The kernel is cached:
# a second run finds it and does nothing. Prints nothing else on success but one line.
set -euo pipefail
dir=${1:-build/vm}

can_apt() { command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; }
apt_updated=
apt_update() { [ -n "$apt_updated" ] || { apt-get update -qq; apt_updated=1; }; }
export DEBIAN_FRONTEND=noninteractive

if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
  if ! can_apt; then
    echo "vmdeps: qemu-system-x86_64 is missing. On Debian, as root: apt-get install qemu-system-x86" >&2
    exit 1
  fi
  echo "vmdeps: installing qemu-system-x86 with apt-get (Debian packages)"
  apt_update
  apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null
fi

if [ -f "$dir/kernel/.package" ]; then
  echo "vmdeps: qemu present; guest kernel $(cat "$dir/kernel/.package") cached in $dir/kernel"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then
  echo "vmdeps: the guest kernel comes from Debian's linux-image-amd64; this needs apt-get and dpkg (Debian or Ubuntu)" >&2
  exit 1
fi

# The versioned package linux-image-amd64 depends on, e.g. linux-image-6.1.0-42-amd64.
kpkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
pkg=$(kpkg)
if [ -z "$pkg" ]; then
  if ! can_apt; then
    echo "vmdeps: apt knows no linux-image-amd64; run apt-get update as root" >&2
    exit 1
  fi
  apt_update
  pkg=$(kpkg)
fi
if [ -z "$pkg" ]; then
  echo "vmdeps: linux-image-amd64 has no versioned kernel dependency; is this Debian?" >&2
  exit 1
fi

echo "vmdeps: downloading $pkg (the guest kernel)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp" # apt's _apt user writes here
(cd "$tmp" && apt-get download -qq "$pkg" 2>/dev/null) || { apt_update && (cd "$tmp" && apt-get download -qq "$pkg"); }
rm -rf "$dir/kernel" && mkdir -p "$dir/kernel"
dpkg -x "$tmp"/*.deb "$dir/kernel"
echo "$pkg" > "$dir/kernel/.package"
echo "vmdeps: guest kernel $pkg unpacked in $dir/kernel"
