#!/usr/bin/env bash
# Installs the real peers the tests drive, from Debian's packages only.
set -euo pipefail
PACKAGES=(openssl curl unzip postgresql nginx testssl.sh chromium fonts-noto-cjk softhsm2 opensc libengine-pkcs11-openssl poppler-utils libnss3-tools gnutls-bin faketime libxml2-utils jing rsyslog rsyslog-gnutls golang-cfssl)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "test peers installed: ${PACKAGES[*]}"
