#!/bin/sh
# One-shot (service temporal-namespace, image temporalio/admin-tools): waits until the Temporal frontend
# serves, then registers Rampart's namespace and its search attributes when they are missing. The
# deprecated auto-setup image used to do this; temporalio/server does not. Safe to run at every `up`.
set -eu

: "${TEMPORAL_ADDRESS:?set TEMPORAL_ADDRESS}"
: "${TEMPORAL_NAMESPACE:?set TEMPORAL_NAMESPACE}"
retention=${TEMPORAL_NAMESPACE_RETENTION:-168h}

tries=0
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" | grep -q SERVING; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "Temporal at $TEMPORAL_ADDRESS is not serving after 120 s" >&2
    exit 1
  fi
  sleep 2
done

if temporal operator namespace describe --address "$TEMPORAL_ADDRESS" --namespace "$TEMPORAL_NAMESPACE" >/dev/null 2>&1; then
  echo "namespace $TEMPORAL_NAMESPACE exists"
else
  temporal operator namespace create --address "$TEMPORAL_ADDRESS" --namespace "$TEMPORAL_NAMESPACE" --retention "$retention"
fi

# The same list as SEARCH_ATTRIBUTES in workflows/definitions.ts (the API adds any that are missing too).
# Creating an attribute that exists with the same type is a no-op. A namespace created a moment ago is
# not in the frontend's namespace cache yet, so this retries until the cache has it.
tries=0
until temporal operator search-attribute create --address "$TEMPORAL_ADDRESS" --namespace "$TEMPORAL_NAMESPACE" \
  --name RampartService --type Keyword \
  --name RampartEnvironment --type Keyword \
  --name RampartVersion --type Keyword \
  --name RampartPhase --type Keyword \
  --name RampartOutcome --type Keyword \
  --name RampartRegion --type Keyword; do
  tries=$((tries + 1))
  if [ "$tries" -ge 30 ]; then
    echo "could not register Rampart's search attributes in $TEMPORAL_NAMESPACE" >&2
    exit 1
  fi
  sleep 2
done
echo "namespace $TEMPORAL_NAMESPACE is ready"
