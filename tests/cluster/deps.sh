#!/usr/bin/env bash
# Installs what the local cluster needs and is not built from Go: Prometheus from Debian's
# packages (and its promtool), openssl for certificates, curl, python3 and PyYAML for the
# scripts. Safe to run again.
# (etcd is built from its Go module: Debian's 3.4 is too old for kube-apiserver 1.34's watch-lists.)
set -euo pipefail
need=()
command -v curl >/dev/null || need+=(curl)
command -v prometheus >/dev/null || need+=(prometheus)
command -v openssl >/dev/null || need+=(openssl)
command -v python3 >/dev/null || need+=(python3)
# promtool (Debian ships it with Prometheus) tests the alerts; PyYAML reads the Helm chart's output.
command -v promtool >/dev/null || need+=(prometheus)
python3 -c 'import yaml' 2>/dev/null || need+=(python3-yaml)
# shellcheck source=serial.sh
source "$(dirname "$0")/serial.sh"
apt_install "${need[@]}"
command -v kubectl >/dev/null || { echo "[deps] kubectl is required and missing" >&2; exit 1; }
