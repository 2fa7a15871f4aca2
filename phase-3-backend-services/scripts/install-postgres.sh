#!/usr/bin/env bash
# Makes sure PostgreSQL server binaries (>= 13) exist; installs Debian's package if absent.
# Prints the directory holding initdb/postgres/pg_ctl on stdout.
source "$(dirname "$0")/lib.sh"

find_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [[ -x "$d/initdb" && -x "$d/postgres" ]] && { echo "$d"; return 0; }
  done
  return 1
}

if bindir="$(find_bindir)"; then echo "$bindir"; exit 0; fi
need apt-get "install postgresql"
log "installing Debian's postgresql server package (first run only)"
apt_install postgresql
# The package starts a cluster on the default port; the stack runs its own private ones.
(service postgresql stop || pg_ctlcluster --help) >/dev/null 2>&1 || true
bindir="$(find_bindir)" || die "postgresql installed but no initdb found under /usr/lib/postgresql"
echo "$bindir"
