#!/usr/bin/env bash
# Builds the offline compose validator (test/topology/compose-validator: compose-go, the parser of
# Docker Compose v2, from the Go module proxy) into .tools/compose-validator/compose-validator, where
# test/topology/compose.test.ts finds it. Needs Go; go.sum pins every module.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${RAMPART_TOOLS_DIR:-$root/.tools}/compose-validator/compose-validator"
go_bin="$(command -v go || true)"
if [ -z "$go_bin" ] && [ -x /usr/local/go/bin/go ]; then go_bin=/usr/local/go/bin/go; fi
if [ -z "$go_bin" ]; then
  echo "go not found: the compose validator is built from Go modules (install Go 1.24 or newer)" >&2
  exit 1
fi
mkdir -p "$(dirname "$out")"
cd "$root/test/topology/compose-validator"
GOFLAGS="-mod=readonly -buildvcs=false" "$go_bin" build -trimpath -o "$out" .
echo "compose validator built: $out"
