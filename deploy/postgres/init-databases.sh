#!/bin/sh
# First start of the PostgreSQL volume: one database and one owner per service, so a
# service can reach only its own data. Passwords come from the container environment.
set -eu
psql -v ON_ERROR_STOP=1 --username postgres --dbname postgres \
    -v authors_password="$AUTHORS_DB_PASSWORD" \
    -v keycloak_password="$KEYCLOAK_DB_PASSWORD" <<'SQL'
CREATE ROLE authors LOGIN PASSWORD :'authors_password';
CREATE DATABASE authors OWNER authors;
REVOKE ALL ON DATABASE authors FROM PUBLIC;
CREATE ROLE keycloak LOGIN PASSWORD :'keycloak_password';
CREATE DATABASE keycloak OWNER keycloak;
REVOKE ALL ON DATABASE keycloak FROM PUBLIC;
SQL
