#!/bin/sh
# Creates the role the apps log in as: it owns the database POSTGRES_DB, and through it the
# schema public there (PostgreSQL 15+ no longer lets every role create in public; its owner
# is pg_database_owner, i.e. the database's owner), so Dapr's state.postgresql v2 can create
# its state and metadata tables. No SUPERUSER, CREATEDB or CREATEROLE.
# The postgres image runs this once, when it initialises an empty data directory, as the
# superuser over the local socket (docker-entrypoint-initdb.d; it sources .sh files that are
# not executable). Its password is read from the mounted Secret file by psql itself (\set with
# a backquoted cat), so it appears in no command line or environment.
# Needs: POSTGRES_USER, POSTGRES_DB, LEARNFLOW_APP_USER, LEARNFLOW_APP_PASSWORD_FILE.
psql --set ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  --set app_user="$LEARNFLOW_APP_USER" --set db="$POSTGRES_DB" \
  --set password_file="$LEARNFLOW_APP_PASSWORD_FILE" <<'SQL'
\set app_password `cat :'password_file'`
CREATE ROLE :"app_user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'app_password';
ALTER DATABASE :"db" OWNER TO :"app_user";
ALTER SCHEMA public OWNER TO :"app_user";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"app_user";
SQL
