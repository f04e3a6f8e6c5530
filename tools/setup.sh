#!/usr/bin/env bash
# Installs what fastsync's demo, tests and benchmarks need, idempotently:
# Debian packages (Dovecot, openssl; the peers for `make bench`) and a venv in .venv with fastsync in it.
# Usage: tools/setup.sh [--bench]
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=()
[ -x /usr/sbin/dovecot ] || pkgs+=(dovecot-imapd)
command -v openssl >/dev/null || pkgs+=(openssl)
# The UI tests: Curses.Blinkenlights in tmux, Tk.Blinkenlights on Xvfb clicked with xdotool and
# photographed with xwd; python3-tk gives the Debian Python tkinter (pyenv Pythons bring their own).
command -v tmux >/dev/null || pkgs+=(tmux)
command -v Xvfb >/dev/null || pkgs+=(xvfb)
command -v xdotool >/dev/null || pkgs+=(xdotool)
command -v xwd >/dev/null || pkgs+=(x11-apps)
dpkg -s python3-tk >/dev/null 2>&1 || pkgs+=(python3-tk)
# Cyrus and Courier for the multi-server tests. Their servers conflict with dovecot-imapd (all
# provide imap-server), so those packages are unpacked into .servers/ below and run from there;
# what they link against, and the SASL and Courier auth tools, is installed normally.
for p in libxapian30 libpcre3 libical3 libclamav12 libicu72 libjansson4 libzephyr4 libpq5 libwrap0 \
         libsasl2-modules libsasl2-modules-db sasl2-bin libcourier-unicode4 libgamin0 libgdbm6 libidn12 \
         libltdl7 courier-authlib courier-authlib-userdb courier-authdaemon util-linux; do
  dpkg -s "$p" >/dev/null 2>&1 || pkgs+=("$p")
done
# fastsync[dist] (migrate --queue, worker, batch): its tests start a private redis-server.
command -v redis-server >/dev/null || pkgs+=(redis-server)
# Debian's python3 has no venv/ensurepip without python3-venv (a pyenv Python has both).
py=${PYTHON:-python3}
if ! "$py" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  pkgs+=(python3-venv)
fi
if [ "${1:-}" = "--bench" ]; then
  command -v mbsync >/dev/null || pkgs+=(isync)
  command -v offlineimap >/dev/null || pkgs+=(offlineimap3)
  command -v parallel >/dev/null || pkgs+=(parallel)
fi
if [ ${#pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then sudo=(); elif command -v sudo >/dev/null; then sudo=(sudo); else
    echo "setup: need root (or sudo) to install Debian packages: ${pkgs[*]}" >&2; exit 1
  fi
  echo "setup: installing ${pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

# unpack DIR PACKAGE...: the packages' files under .servers/DIR, once (a stamp records it).
unpack() {
  local dir=.servers/$1; shift
  [ -f "$dir/.unpacked" ] && return 0
  local tmp; tmp=$(mktemp -d)
  echo "setup: unpacking $* into $dir"
  (cd "$tmp" && { apt-get download -qq "$@" 2>/dev/null || { apt-get update -qq && apt-get download -qq "$@"; }; })
  mkdir -p "$dir"
  for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$dir"; done
  rm -rf "$tmp"
  touch "$dir/.unpacked"
}
unpack cyrus cyrus-common cyrus-imapd
unpack courier courier-base courier-imap

"$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "setup: Python >= 3.11 needed" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv || { echo "setup: cannot create .venv with $py" >&2; exit 1; }
fi
stamp=.venv/.fastsync-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing fastsync and its test tools into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/python -m pip install -q -e '.[test,dist]'
  touch "$stamp"
fi
if [ "${1:-}" = "--bench" ]; then
  # fastsync as a user installs it (pip install ., no test tools, no editable hook), so its
  # start-up is timed as it would be on their machine; reinstalled each time (the code moves).
  [ -x bench/work/venv/bin/python ] || "$py" -m venv bench/work/venv
  bench/work/venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  bench/work/venv/bin/python -m pip install -q '.[dist]' >/dev/null
  bench/work/venv/bin/python -m pip install -q --no-deps --force-reinstall . >/dev/null
fi
