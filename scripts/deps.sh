#!/usr/bin/env bash
# Installs what the build needs and is missing: Verilator, Yosys, tshark and a C++ toolchain from
# Debian's packages. Go modules come through the module proxy when go first builds. On another
# distribution, or without root, it says what to install and stops.
set -euo pipefail

need_cmds=(verilator yosys tshark g++ make)
declare -A pkg_of=([verilator]=verilator [yosys]=yosys [tshark]=tshark [g++]=g++ [make]=make)

missing=()
for c in "${need_cmds[@]}"; do
  command -v "$c" >/dev/null 2>&1 || missing+=("$c")
done

if ! command -v go >/dev/null 2>&1; then
  echo "deps: Go is not on PATH. Install Go 1.25 or later (https://go.dev/dl) and run make again." >&2
  exit 1
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: verilator, yosys, tshark, g++ and make are present"
else
  pkgs=()
  for c in "${missing[@]}"; do pkgs+=("${pkg_of[$c]}"); done
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    echo "deps: installing ${pkgs[*]} with apt-get (Debian packages)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
    echo "deps: installed ${pkgs[*]}"
  else
    cat >&2 <<MSG
deps: missing ${missing[*]}.
  On Debian or Ubuntu, as root:  apt-get install ${pkgs[*]}   (or run make deps as root)
  Elsewhere: install Verilator 5.006 or later, Yosys 0.23 or later, tshark (Wireshark's CLI)
  and a C++17 compiler from your distribution, then run make again.
MSG
    exit 1
  fi
fi

# The versions the project is tested with; older ones are refused, newer ones are reported.
vver=$(verilator --version | awk '{print $2}')
if [ "$(printf '%s\n' 5.006 "$vver" | sort -V | head -n1)" != 5.006 ]; then
  echo "deps: Verilator $vver is older than 5.006; install 5.006 or later" >&2
  exit 1
fi
