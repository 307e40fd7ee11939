#!/usr/bin/env bash
# Install Debian/Ubuntu packages when missing, as root or through passwordless sudo.
# Exit 0 when they are all present afterwards, 1 when they could not be installed here.
set -u
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
command -v apt-get >/dev/null || { echo "apt-get not found: cannot install ${missing[*]}" >&2; exit 1; }
if [ "$(id -u)" -eq 0 ]; then SUDO=""
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"
else echo "not root and no passwordless sudo: cannot install ${missing[*]}" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
echo "installing ${missing[*]}" >&2
$SUDO apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 && exit 0
$SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q "${missing[@]}" >/dev/null 2>&1
