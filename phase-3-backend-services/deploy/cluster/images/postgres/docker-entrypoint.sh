#!/usr/bin/env bash
# Entrypoint of the local PostgreSQL stand-in for the official `postgres` image, honouring the
# same contract (written for this project; behaviour as documented for the official image):
#   POSTGRES_PASSWORD / POSTGRES_PASSWORD_FILE   superuser password (required on first start
#                                                unless POSTGRES_HOST_AUTH_METHOD=trust)
#   POSTGRES_USER / POSTGRES_USER_FILE           superuser name (default postgres)
#   POSTGRES_DB / POSTGRES_DB_FILE               database created on first start (default: user)
#   POSTGRES_INITDB_ARGS, POSTGRES_INITDB_WALDIR, POSTGRES_HOST_AUTH_METHOD, PGDATA, PGPORT
# With an empty PGDATA: initdb, `host all all all <auth>` in pg_hba.conf (auth = the
# server's password_encryption, scram-sha-256), a temporary server on the unix socket only,
# POSTGRES_DB created, /docker-entrypoint-initdb.d/* run (*.sh executed or sourced, *.sql,
# *.sql.gz|xz|zst through psql), server stopped. A PGDATA holding PG_VERSION is used as it is.
# Then `exec "$@"` (CMD `postgres`; arguments starting with '-' are passed to postgres).
# Runs as the user it is started as; started as root it prepares the directories and steps
# down to `postgres` (setpriv instead of gosu).
set -Eeo pipefail

# VAR or VAR_FILE (not both) into VAR, else DEFAULT.
file_env() {
  local var="$1" file_var="${1}_FILE" default="${2:-}" value
  if [[ -n "${!var:-}" && -n "${!file_var:-}" ]]; then
    printf >&2 'error: both %s and %s are set (but are exclusive)\n' "$var" "$file_var"
    exit 1
  fi
  value="$default"
  if [[ -n "${!var:-}" ]]; then
    value="${!var}"
  elif [[ -n "${!file_var:-}" ]]; then
    value="$(<"${!file_var}")"
  fi
  export "$var"="$value"
  unset "$file_var"
}

setup_env() {
  file_env POSTGRES_PASSWORD
  file_env POSTGRES_USER postgres
  file_env POSTGRES_DB "$POSTGRES_USER"
  file_env POSTGRES_INITDB_ARGS
  : "${POSTGRES_HOST_AUTH_METHOD:=}"
  DATABASE_ALREADY_EXISTS=
  if [[ -s "$PGDATA/PG_VERSION" ]]; then DATABASE_ALREADY_EXISTS=true; fi
}

create_directories() {
  mkdir -p "$PGDATA"
  chmod 00700 "$PGDATA" || :  # may be impossible on some volumes; postgres then says why
  mkdir -p /var/run/postgresql || :
  chmod 03775 /var/run/postgresql || :
  if [[ -n "${POSTGRES_INITDB_WALDIR:-}" ]]; then
    mkdir -p "$POSTGRES_INITDB_WALDIR"
    chmod 700 "$POSTGRES_INITDB_WALDIR"
  fi
  if [[ "$(id -u)" == 0 ]]; then
    find "$PGDATA" /var/run/postgresql ${POSTGRES_INITDB_WALDIR:+"$POSTGRES_INITDB_WALDIR"} \
      \! -user postgres -exec chown postgres: '{}' +
  fi
}

# initdb wants the current uid in /etc/passwd: fake it with nss_wrapper when it is not there.
with_passwd_entry() {
  local uid gid wrapper
  uid="$(id -u)"
  if ! getent passwd "$uid" >/dev/null 2>&1; then
    gid="$(id -g)"
    for wrapper in /usr/lib/*/libnss_wrapper.so /usr/lib/libnss_wrapper.so; do
      [[ -s "$wrapper" ]] || continue
      NSS_WRAPPER_PASSWD="$(mktemp)"
      NSS_WRAPPER_GROUP="$(mktemp)"
      printf 'postgres:x:%s:%s:PostgreSQL:%s:/bin/false\n' "$uid" "$gid" "$PGDATA" >"$NSS_WRAPPER_PASSWD"
      printf 'postgres:x:%s:\n' "$gid" >"$NSS_WRAPPER_GROUP"
      LD_PRELOAD="$wrapper" NSS_WRAPPER_PASSWD="$NSS_WRAPPER_PASSWD" NSS_WRAPPER_GROUP="$NSS_WRAPPER_GROUP" "$@"
      local status=$?
      rm -f "$NSS_WRAPPER_PASSWD" "$NSS_WRAPPER_GROUP"
      return "$status"
    done
  fi
  "$@"
}

init_database_dir() {
  local args=()
  if [[ -n "${POSTGRES_INITDB_WALDIR:-}" ]]; then args+=(--waldir "$POSTGRES_INITDB_WALDIR"); fi
  # POSTGRES_INITDB_ARGS is a shell word list, as in the official image. The trailing newline
  # keeps --pwfile happy with an empty password (trust).
  eval 'with_passwd_entry initdb --username="$POSTGRES_USER" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") '"$POSTGRES_INITDB_ARGS"' "${args[@]}"'
}

verify_minimum_env() {
  if [[ -z "$POSTGRES_PASSWORD" && "$POSTGRES_HOST_AUTH_METHOD" != trust ]]; then
    cat >&2 <<'EOE'
Error: Database is uninitialized and superuser password is not specified.
       Set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) to a non-empty value for the
       superuser, or POSTGRES_HOST_AUTH_METHOD=trust to allow every connection without one
       (not recommended).
EOE
    exit 1
  fi
  if [[ "$POSTGRES_HOST_AUTH_METHOD" == trust ]]; then
    echo >&2 'WARNING: POSTGRES_HOST_AUTH_METHOD=trust: every host may connect without a password.'
  fi
}

# `host all all all <method>`; the method defaults to the server's password_encryption.
setup_hba_conf() {
  [[ "${1:-}" == postgres ]] && shift
  local auth
  auth="$(postgres -C password_encryption "$@")"
  : "${POSTGRES_HOST_AUTH_METHOD:=$auth}"
  {
    printf '\n'
    [[ "$POSTGRES_HOST_AUTH_METHOD" == trust ]] && printf '# warning: trust is enabled for all connections\n'
    printf 'host all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD"
  } >>"$PGDATA/pg_hba.conf"
}

# Runs psql against the temporary server (unix socket), as the superuser, into POSTGRES_DB.
process_sql() {
  local query_runner=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
  if [[ -n "$POSTGRES_DB" ]]; then query_runner+=(--dbname "$POSTGRES_DB"); fi
  PGHOST='' PGHOSTADDR='' "${query_runner[@]}" "$@"
}
# The official entrypoint's names, for init scripts that call them.
docker_process_sql() { process_sql "$@"; }

setup_db() {
  local db="$POSTGRES_DB" exists
  exists="$(POSTGRES_DB='' process_sql --dbname postgres --set db="$db" --tuples-only <<<"SELECT 1 FROM pg_database WHERE datname = :'db' ;")"
  if [[ -z "${exists//[[:space:]]/}" ]]; then
    POSTGRES_DB='' process_sql --dbname postgres --set db="$db" <<<'CREATE DATABASE :"db" ;'
    printf '\n'
  fi
}

process_init_files() {
  # `psql` for init scripts written for the official image ("${psql[@]}").
  # shellcheck disable=SC2034
  psql=(process_sql)
  local f
  printf '\n'
  for f; do
    case "$f" in
      *.sh)
        if [[ -x "$f" ]]; then
          printf '%s: running %s\n' "$0" "$f"
          "$f"
        else
          printf '%s: sourcing %s\n' "$0" "$f"
          # shellcheck disable=SC1090
          . "$f"
        fi
        ;;
      *.sql) printf '%s: running %s\n' "$0" "$f"; process_sql -f "$f"; printf '\n' ;;
      *.sql.gz) printf '%s: running %s\n' "$0" "$f"; gunzip -c "$f" | process_sql; printf '\n' ;;
      *.sql.xz) printf '%s: running %s\n' "$0" "$f"; xzcat "$f" | process_sql; printf '\n' ;;
      *.sql.zst) printf '%s: running %s\n' "$0" "$f"; zstd -dc "$f" | process_sql; printf '\n' ;;
      *) printf '%s: ignoring %s\n' "$0" "$f" ;;
    esac
    printf '\n'
  done
}

# A server for the setup only: no TCP listener, the unix socket in /var/run/postgresql.
temp_server_start() {
  [[ "${1:-}" == postgres ]] && shift
  set -- "$@" -c listen_addresses='' -p "${PGPORT:-5432}"
  PGUSER="${PGUSER:-$POSTGRES_USER}" pg_ctl -D "$PGDATA" -o "$(printf '%q ' "$@")" -w start
}

temp_server_stop() {
  PGUSER="${PGUSER:-postgres}" pg_ctl -D "$PGDATA" -m fast -w stop
}

wants_help() {
  local arg
  for arg; do
    case "$arg" in -'?' | --help | --describe-config | -V | --version) return 0 ;; esac
  done
  return 1
}

main() {
  if [[ "${1:0:1}" == - ]]; then set -- postgres "$@"; fi

  if [[ "$1" == postgres ]] && ! wants_help "$@"; then
    setup_env
    create_directories
    if [[ "$(id -u)" == 0 ]]; then
      exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
    fi

    if [[ -z "$DATABASE_ALREADY_EXISTS" ]]; then
      verify_minimum_env
      # Fail now, not half-initialised, if the init directory is unreadable.
      ls /docker-entrypoint-initdb.d/ >/dev/null
      init_database_dir
      setup_hba_conf "$@"
      # For psql when POSTGRES_INITDB_ARGS asks for passwords on local connections too.
      export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
      temp_server_start "$@"
      setup_db
      process_init_files /docker-entrypoint-initdb.d/*
      temp_server_stop
      unset PGPASSWORD
      printf '\nPostgreSQL init process complete; ready for start up.\n\n'
    else
      printf '\nPostgreSQL Database directory appears to contain a database; Skipping initialization\n\n'
    fi
  fi

  exec "$@"
}

main "$@"
