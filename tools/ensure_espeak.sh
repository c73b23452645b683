#!/bin/sh
# Make sure espeak-ng is installed, for the tts-digits dataset (trainer/data/tts_digits.py: the
# ten digits said by espeak-ng voices) and its tests. Idempotent:
#   - `espeak-ng` already on PATH: nothing to do;
#   - root with apt-get (Debian/Ubuntu): install the `espeak-ng` package (a few MB);
#   - otherwise: print how to install it and exit 0 (the tts-digits tests then skip, naming
#     this script as the fix; under CI a skip is a failure).
set -eu

if command -v espeak-ng >/dev/null 2>&1; then
    echo "ensure_espeak: $(command -v espeak-ng) is installed ($(espeak-ng --version | cut -c1-40))"
    exit 0
fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure_espeak: installing the Debian package espeak-ng"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng
    command -v espeak-ng >/dev/null 2>&1 || {
        echo "ensure_espeak: apt-get installed espeak-ng but it is not on PATH" >&2
        exit 1
    }
    echo "ensure_espeak: $(command -v espeak-ng) is installed"
    exit 0
fi

cat <<'MSG'
ensure_espeak: espeak-ng is not installed and this script cannot install it here
(needs root and apt-get). Install it yourself, then re-run the tests:
  Debian/Ubuntu:  sudo apt-get install espeak-ng
  Fedora:         sudo dnf install espeak-ng
  macOS:          brew install espeak-ng
The tts-digits tests skip until `espeak-ng` is on PATH.
MSG
exit 0
