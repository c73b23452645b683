#!/bin/sh
# Make sure espeak-ng and flite are installed, for the tts-digits dataset
# (trainer/data/tts_digits.py: the ten digits said by espeak-ng voices, and by flite voices with
# option flite_voices) and its tests. Idempotent:
#   - both already on PATH: nothing to do;
#   - root with apt-get (Debian/Ubuntu): install the missing packages `espeak-ng`, `flite`
#     (a few MB each);
#   - otherwise: print how to install them and exit 0 (the tts-digits tests then skip, naming
#     this script as the fix; under CI a skip is a failure).
set -eu

missing=""
for pkg in espeak-ng flite; do
    command -v "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done

if [ -z "$missing" ]; then
    echo "ensure_espeak: $(command -v espeak-ng) is installed ($(espeak-ng --version | cut -c1-40))"
    echo "ensure_espeak: $(command -v flite) is installed ($(flite --version | grep -o 'flite-[^ ]*'))"
    exit 0
fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure_espeak: installing the Debian package(s)$missing"
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
    for pkg in $missing; do
        command -v "$pkg" >/dev/null 2>&1 || {
            echo "ensure_espeak: apt-get installed $pkg but it is not on PATH" >&2
            exit 1
        }
        echo "ensure_espeak: $(command -v "$pkg") is installed"
    done
    exit 0
fi

cat <<MSG
ensure_espeak: not installed:$missing; this script cannot install them here
(needs root and apt-get). Install them yourself, then re-run the tests:
  Debian/Ubuntu:  sudo apt-get install$missing
  Fedora:         sudo dnf install$missing
  macOS:          brew install$missing
The tts-digits tests skip until they are on PATH.
MSG
exit 0
