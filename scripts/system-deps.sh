#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, when they are missing.
# SoftHSM2 (PKCS#11 HSM for the custody tests) and libsecp256k1 (python-bitcointx's verifier).
set -euo pipefail
need=()
[ -e /usr/lib/softhsm/libsofthsm2.so ] || need+=(softhsm2)
ldconfig -p | grep -q 'libsecp256k1\.so' || need+=(libsecp256k1-1)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "system-deps: missing ${need[*]}; install them with apt-get (needs root)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
