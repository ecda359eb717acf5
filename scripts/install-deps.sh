#!/usr/bin/env bash
# Installs the Debian packages policylag needs to build, test and run.
# This is the one list of them. Idempotent: packages already installed are
# left alone, and apt-get update runs at most once, only when something is
# missing. Uses sudo when not run as root.
#
#   scripts/install-deps.sh            build, test and run dependencies
#   scripts/install-deps.sh --check    only report what is missing (exit 1 if anything is)
#   scripts/install-deps.sh --extra NAME...   also install these (used by test targets
#                                      that need a tool only they use, such as chromium)
set -euo pipefail

packages=(
	# toolchain
	build-essential pkg-config git ca-certificates
	# libraries
	libssl-dev openssl libpaho-mqtt-dev libyaml-dev libjansson-dev
	libmicrohttpd-dev libcurl4-openssl-dev
	# the embedded simulator: the broker, and the headers for its plugin API
	mosquitto mosquitto-dev libmosquitto-dev
	# tests and lint (awscli: tests/check_api_cli drives the simulator's API with it)
	check cppcheck mosquitto-clients procps awscli
)

check_only=0
if [[ "${1:-}" == "--check" ]]; then
	check_only=1
	shift
elif [[ "${1:-}" == "--extra" ]]; then
	shift
	packages=("$@")
	set --
fi

is_installed() {
	[[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

missing=()
for pkg in "${packages[@]}"; do
	is_installed "$pkg" || missing+=("$pkg")
done

if [[ ${#missing[@]} -eq 0 ]]; then
	exit 0
fi

if [[ $check_only -eq 1 ]]; then
	echo "install-deps: missing packages: ${missing[*]}" >&2
	exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-deps: apt-get not found; install these packages with your package manager: ${missing[*]}" >&2
	exit 1
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "install-deps: not root and sudo is not available; as root, run: apt-get install ${missing[*]}" >&2
		exit 1
	fi
	sudo=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" apt-get update -qq; then
	echo "install-deps: apt-get update failed; check the network and /etc/apt/sources.list" >&2
	exit 1
fi
if ! "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
	echo "install-deps: apt-get install failed for: ${missing[*]}" >&2
	exit 1
fi

# Debian starts a system-wide mosquitto on port 1883 after installing it. The
# simulator runs its own instances on free loopback ports and does not need it.
still_missing=()
for pkg in "${missing[@]}"; do
	is_installed "$pkg" || still_missing+=("$pkg")
done
if [[ ${#still_missing[@]} -gt 0 ]]; then
	echo "install-deps: still missing after install: ${still_missing[*]}" >&2
	exit 1
fi
echo "install-deps: done"
