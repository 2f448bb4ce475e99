#!/usr/bin/env bash
# Headless Chromium for the sweep browser's tests: Debian's `chromium` package, driven by the
# playwright Python package (its own browser download is not used). Idempotent.
#
#   bash scripts/install_chromium.sh
#
# Without root or apt-get it says how to get a browser and exits 0: the browser tests then skip
# with that reason (and fail under CI=true). TAU_EXP_CHROMIUM names another Chromium binary.
set -euo pipefail

browser="${TAU_EXP_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$browser" ]; then echo "Chromium is installed: $browser"; exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "install_chromium: cannot install Chromium here (needs root and apt-get); install Debian's" \
    "chromium package, or set TAU_EXP_CHROMIUM to a Chromium binary, to run the browser tests" >&2
  exit 0
fi
apt-get update -qq >/dev/null
# No recommends: they pull desktop services (avahi, upower...) that a test machine does not need;
# the fonts make screenshots readable (DejaVu has the ✓ ✗ ▲ glyphs the page uses).
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  chromium fonts-liberation fonts-dejavu-core >/dev/null
echo "installed chromium ($(chromium --version 2>/dev/null || echo '?'))"
