#!/usr/bin/env bash
# Install the system packages zhcharge needs, only those that are missing.
#   scripts/setup-system.sh          PostgreSQL + PostGIS 3 (unless ZHCHARGE_DATABASE_URL is set), Node.js/npm
#   scripts/setup-system.sh --test   the same plus Chromium and CJK fonts for the browser tests, and
#                                    PgBouncer for the scale-out tests (tests/integration/scale)
# Uses apt-get as root, or sudo when it works without a password; otherwise prints what to install.
set -euo pipefail

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

if [[ -z "${ZHCHARGE_DATABASE_URL:-}" ]]; then
  pgver=""
  if [[ -d /usr/lib/postgresql ]]; then
    pgver=$(ls /usr/lib/postgresql | grep -E '^[0-9]+$' | sort -n | tail -1 || true)
  fi
  if [[ -z "$pgver" || ! -x "/usr/lib/postgresql/$pgver/bin/initdb" ]]; then
    need+=(postgresql postgresql-contrib)
    pgver=""
  fi
  if [[ -n "$pgver" ]]; then
    [[ -f "/usr/share/postgresql/$pgver/extension/postgis.control" ]] || need+=("postgresql-$pgver-postgis-3")
  else
    need+=(postgis)   # pulls the PostGIS 3 package of the distribution's default PostgreSQL
  fi
fi
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
python3 -c "import ensurepip, venv" 2>/dev/null || need+=(python3-venv)
if [[ $want_test == 1 ]]; then
  [[ -x /usr/bin/chromium ]] || need+=(chromium)
  have_pkg fonts-noto-cjk || need+=(fonts-noto-cjk)
  command -v pgbouncer >/dev/null 2>&1 || [[ -x /usr/sbin/pgbouncer ]] || need+=(pgbouncer)
fi

[[ ${#need[@]} -eq 0 ]] && exit 0

echo "setup: installing system packages: ${need[*]}"
if [[ $(id -u) -eq 0 ]]; then
  SUDO=""
elif sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  echo "setup: please install these packages (as root): apt-get install ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts a PgBouncer on 6432 when it installs it; zhcharge runs its own (services/pgbouncer.py).
if [[ " ${need[*]} " == *" pgbouncer "* ]]; then
  { $SUDO systemctl disable --now pgbouncer || $SUDO service pgbouncer stop; } >/dev/null 2>&1 || true
fi
# Debian starts a default cluster on 5432 when it installs the server; zhcharge does not use it.
if [[ " ${need[*]} " == *" postgresql "* ]] && command -v pg_lsclusters >/dev/null 2>&1; then
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /usr/lib/postgresql | sort -n | tail -1)" main stop 2>/dev/null || true
fi
