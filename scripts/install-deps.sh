#!/usr/bin/env bash
# Installs the real servers plantgate's demo and tests use (Debian/Ubuntu packages), then the npm
# dependencies. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

missing=()
command -v influxd >/dev/null || missing+=(influxdb)                       # InfluxDB 1.x
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v mosquitto_pub >/dev/null || missing+=(mosquitto-clients)
command -v victoria-metrics >/dev/null || missing+=(victoria-metrics)      # the /api/v2/write protocol
command -v openssl >/dev/null || missing+=(openssl)                        # test certificates (security tests)
[ -x /usr/bin/chromium ] || missing+=(chromium)                             # the dashboard's browser test
command -v etcd >/dev/null || missing+=(etcd-server)                       # the fleet's leases (cluster tests)
command -v etcdctl >/dev/null || missing+=(etcd-client)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian may start these as services on their default ports; plantgate's demo and tests run their
# own on other ports, but a stray mosquitto on 1883 would take the demo broker's port.
if [ -n "${missing[*]}" ]; then
  ($SUDO service mosquitto stop || true) >/dev/null 2>&1
  ($SUDO service influxdb stop || true) >/dev/null 2>&1
  ($SUDO service etcd stop || true) >/dev/null 2>&1
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
