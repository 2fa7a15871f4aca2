"""The PostgreSQL init script of the cluster (base/infra/postgres-init/) run against a real,
private PostgreSQL the way the postgres image runs it: sourced by a bash entrypoint as the
superuser, with the StatefulSet's environment. The role it creates is the apps' role: it logs
in, owns the database and can create tables in public (Dapr's state.postgresql v2 creates its
own), and has none of SUPERUSER, CREATEDB, CREATEROLE."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from learnflow_stack.paths import installed_dir
from learnflow_stack.postgres import PostgresServer

DEPLOY_DIR = Path(__file__).resolve().parents[1]
INIT_SCRIPT = DEPLOY_DIR / "base" / "infra" / "postgres-init" / "10-learnflow-app-role.sh"
APP_PASSWORD = "app password with $ and ' in it"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    # PostgreSQL's own user must reach the data directory: not under pytest's private tmp.
    run_dir = Path(tempfile.mkdtemp(prefix="learnflow-pg-init-", dir="/tmp"))
    run_dir.chmod(0o755)
    server = PostgresServer(installed_dir("install-postgres.sh"), run_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(run_dir, ignore_errors=True)


def statefulset_env(rendered_overlay: list[dict[str, Any]]) -> dict[str, str]:
    (postgres,) = [
        d
        for d in rendered_overlay
        if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "postgres"
    ]
    return {
        e["name"]: e["value"] for e in postgres["spec"]["template"]["spec"]["containers"][0]["env"]
    }


def psql(
    server: PostgresServer, user: str, sql: str, database: str = "learnflow", **variables: str
) -> str:
    """Runs ``sql`` (from stdin, so psql interpolates ``:'name'`` from ``variables``)."""
    settings = [f"--set={name}={value}" for name, value in variables.items()]
    result = subprocess.run(
        [
            str(server.bindir / "psql"),
            *("-h", "127.0.0.1", "-p", str(server.port), "-U", user, "-d", database),
            *("--set=ON_ERROR_STOP=1", "--no-psqlrc", "-At", *settings),
        ],
        input=sql,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def initialised(postgres: PostgresServer, rendered_overlay: list[dict[str, Any]]) -> dict[str, str]:
    env = statefulset_env(rendered_overlay)
    password_file = postgres.run_dir / "secrets" / "LEARNFLOW_APP_PASSWORD"
    password_file.parent.mkdir()
    password_file.write_text(APP_PASSWORD)
    result = subprocess.run(
        ["bash", "-c", 'set -Eeo pipefail; source "$1"', "entrypoint", INIT_SCRIPT],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={
            "PATH": f"{postgres.bindir}:{os.environ['PATH']}",
            "PGHOST": "127.0.0.1",
            "PGPORT": str(postgres.port),
            "POSTGRES_USER": env["POSTGRES_USER"],
            "POSTGRES_DB": env["POSTGRES_DB"],
            "LEARNFLOW_APP_USER": env["LEARNFLOW_APP_USER"],
            "LEARNFLOW_APP_PASSWORD_FILE": str(password_file),
        },
    )
    assert result.returncode == 0, result.stderr
    return env


def test_the_app_role_has_no_administrative_rights(
    postgres: PostgresServer, initialised: dict[str, str]
) -> None:
    role = initialised["LEARNFLOW_APP_USER"]
    attributes = psql(
        postgres,
        "postgres",
        "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, "
        "rolbypassrls, rolpassword IS NOT NULL FROM pg_authid WHERE rolname = :'role'",
        role=role,
    )
    assert attributes == "t|f|f|f|f|f|t"


def test_the_app_role_owns_the_database_and_creates_tables_in_public(
    postgres: PostgresServer, initialised: dict[str, str]
) -> None:
    role, database = initialised["LEARNFLOW_APP_USER"], initialised["POSTGRES_DB"]
    owner = psql(
        postgres,
        "postgres",
        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = :'dbname'",
        dbname=database,
    )
    assert owner == role
    # What Dapr's state.postgresql v2 does at start: its metadata and state tables.
    psql(
        postgres,
        role,
        "CREATE TABLE IF NOT EXISTS dapr_metadata (key text PRIMARY KEY, value text); "
        "CREATE TABLE IF NOT EXISTS state (key text PRIMARY KEY, value jsonb); "
        "INSERT INTO state VALUES ('k', '{}'); DROP TABLE state; DROP TABLE dapr_metadata",
        database,
    )


def test_the_password_is_the_one_in_the_secret_file(
    postgres: PostgresServer, initialised: dict[str, str]
) -> None:
    # The server trusts loopback; check the stored SCRAM verifier against the file's password.
    role = initialised["LEARNFLOW_APP_USER"]
    verifier = psql(
        postgres, "postgres", "SELECT rolpassword FROM pg_authid WHERE rolname = :'role'", role=role
    )
    assert verifier.startswith("SCRAM-SHA-256$")
    assert scram_verifier_matches(verifier, APP_PASSWORD)
    assert not scram_verifier_matches(verifier, "another password")


def scram_verifier_matches(verifier: str, password: str) -> bool:
    """PostgreSQL's SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> for password."""
    _, iterations_salt, keys = verifier.split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key, _ = keys.split(":")
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(salt), int(iterations)
    )
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return hashlib.sha256(client_key).digest() == base64.b64decode(stored_key)
