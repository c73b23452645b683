#!/bin/sh
# Make sure a headless-capable Chromium is installed, for tests/test_report_browser.py (which
# opens the HTML report in a real browser). Idempotent:
#   - `chromium` already on PATH: nothing to do;
#   - root with apt-get (Debian/Ubuntu): install the `chromium` package;
#   - otherwise: print how to install it and exit 0 (the browser test then skips, naming this
#     script as the fix).
set -eu

if command -v chromium >/dev/null 2>&1; then
    echo "ensure_chromium: $(command -v chromium) is installed"
    exit 0
fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure_chromium: installing the Debian package chromium (a minute or two)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
    command -v chromium >/dev/null 2>&1 || {
        echo "ensure_chromium: apt-get installed chromium but it is not on PATH" >&2
        exit 1
    }
    echo "ensure_chromium: $(command -v chromium) is installed"
    exit 0
fi

cat <<'EOF'
ensure_chromium: chromium is not installed and this script cannot install it here
(needs root and apt-get). Install it yourself, then re-run the tests:
  Debian/Ubuntu:  sudo apt-get install chromium        (Ubuntu may ship it as a snap)
  Fedora:         sudo dnf install chromium
  macOS:          brew install --cask chromium, and put a `chromium` launcher on PATH
The report's browser test skips until `chromium` is on PATH.
EOF
exit 0
