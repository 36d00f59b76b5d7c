#!/bin/sh
# One-shot (service temporal-schema, image temporalio/admin-tools): creates Temporal's two PostgreSQL
# databases when missing and brings both schemas to the version this admin-tools image ships, which is
# the version of the server image beside it (keep the two tags equal). Safe to run at every `up`: an
# existing database is kept, setup-schema leaves a versioned schema alone, and update-schema applies
# only the versions that are missing. Connection settings come from SQL_HOST, SQL_PORT, SQL_USER and
# SQL_PASSWORD, which temporal-sql-tool reads itself, so the password never appears in a command line.
set -eu

: "${TEMPORAL_DB:?set TEMPORAL_DB}"
: "${TEMPORAL_VISIBILITY_DB:?set TEMPORAL_VISIBILITY_DB}"
export SQL_PLUGIN=postgres12
schemas=/etc/temporal/schema/postgresql/v12

create_database() {
  if output=$(temporal-sql-tool --db "$1" create-database --defaultdb postgres 2>&1); then
    echo "created database $1"
  else
    case "$output" in
      *"already exists"*) echo "database $1 exists" ;;
      *) echo "$output" >&2; exit 1 ;;
    esac
  fi
}

for pair in "$TEMPORAL_DB:temporal" "$TEMPORAL_VISIBILITY_DB:visibility"; do
  database=${pair%%:*}
  schema=${pair#*:}
  create_database "$database"
  temporal-sql-tool --db "$database" setup-schema -v 0.0
  temporal-sql-tool --db "$database" update-schema -d "$schemas/$schema/versioned"
done
echo "Temporal schemas are up to date"
