#!/usr/bin/env bash
# Installs the Debian / Raspberry Pi OS packages libedge needs and that a fresh machine lacks.
#   mosquitto            the MQTT broker the tests start privately (and sites may run)
#   python3-venv         Debian splits venv/ensurepip out of python3
#   libgl1 libegl1 libgles2 libgl1-mesa-dri libmtdev1
#                        what Kivy's bundled SDL2 loads at run time (offscreen too)
#   espeak-ng            spoken prompts at the kiosk (used when present)
#   fonts-dejavu-core    a font with full Vietnamese coverage for receipts
#   libusb-1.0-0         nfcpy's USB card readers and USB receipt printers
#   tesseract-ocr tesseract-ocr-vie zbar-tools
#                        the tests read printed receipts back as a patron would (OCR, QR)
#   chromium             the dashboard's browser test (driven by Playwright, no browser download)
# Only missing packages are installed; with nothing missing this is a no-op and needs no root.
set -euo pipefail
packages=(mosquitto python3-venv libgl1 libegl1 libgles2 libgl1-mesa-dri libmtdev1 espeak-ng
          fonts-dejavu-core libusb-1.0-0 tesseract-ocr tesseract-ocr-vie zbar-tools chromium)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "libedge: please install these packages with your system's package manager: ${missing[*]}" >&2
    exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "libedge: installing system packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
