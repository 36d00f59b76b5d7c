#!/bin/sh
# One-shot (service temporal-schema, image temporalio/admin-tools): creates Temporal's two PostgreSQL
# databases when missing and brings both schemas to the version this admin-tools image ships, which is
# the version of the server image beside it (keep the two tags equal). Safe to run at every `up`:
# create-database keeps an existing database, setup-schema leaves a versioned schema alone, and
# update-schema applies only the versions that are missing. Connection settings come from SQL_HOST,
# SQL_PORT, SQL_USER and SQL_PASSWORD, which temporal-sql-tool reads itself, so the password never
# appears in a command line.
set -eu

: "${TEMPORAL_DB:?set TEMPORAL_DB}"
: "${TEMPORAL_VISIBILITY_DB:?set TEMPORAL_VISIBILITY_DB}"
export SQL_PLUGIN=postgres12
schemas=/etc/temporal/schema/postgresql/v12

for pair in "$TEMPORAL_DB:temporal" "$TEMPORAL_VISIBILITY_DB:visibility"; do
  database=${pair%%:*}
  schema=${pair#*:}
  # PostgreSQL plugin: creates the database only when it does not exist yet.
  temporal-sql-tool --db "$database" create-database --defaultdb postgres
  temporal-sql-tool --db "$database" setup-schema -v 0.0
  temporal-sql-tool --db "$database" update-schema -d "$schemas/$schema/versioned"
done
echo "Temporal schemas are up to date"
