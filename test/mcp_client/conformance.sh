#!/usr/bin/env bash
# Runs official MCP conformance scenarios (@modelcontextprotocol/conformance,
# pinned in package.json) against a running ElixirScope MCP server.
#
#   test/mcp_client/conformance.sh <url> [scenario ...]
#
# Default scenarios: server-initialize ping tools-list dns-rebinding-protection.
# <url> must be a localhost URL such as http://127.0.0.1:4000/mcp (the
# dns-rebinding scenario fails on any other host). The conformance CLI cannot
# send a bearer token, so the server must run without one.
# Prints one PASS/FAIL line per scenario plus each failing check with its
# details (the CLI's full output with CONFORMANCE_VERBOSE=1, or when it wrote
# no checks.json); exits 1 if any scenario fails, 2 on usage errors.
set -u
DIR=$(cd "$(dirname "$0")" && pwd)
CLI="$DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js"
if [ $# -lt 1 ]; then
  echo "usage: $0 <url> [scenario ...]" >&2
  exit 2
fi
if [ ! -f "$CLI" ]; then
  echo "conformance CLI missing: run 'npm ci' in $DIR" >&2
  exit 2
fi
URL=$1
shift
if [ $# -gt 0 ]; then
  SCENARIOS="$*"
else
  SCENARIOS="server-initialize ping tools-list dns-rebinding-protection"
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
failed=0
for s in $SCENARIOS; do
  node "$CLI" server --url "$URL" --scenario "$s" -o "$WORK/$s" >"$WORK/$s.log" 2>&1
  rc=$?
  # The CLI writes <dir>/server-<scenario>-<timestamp>/checks.json.
  checks=$(ls "$WORK/$s"/server-"$s"-*/checks.json 2>/dev/null | head -n 1)
  summary=$(node -e '
    const f = process.argv[1];
    if (!f) { console.log("no checks.json written"); process.exit(0); }
    const checks = JSON.parse(require("fs").readFileSync(f, "utf8"));
    const scored = checks.filter(c => c.status === "SUCCESS" || c.status === "FAILURE");
    const ok = scored.filter(c => c.status === "SUCCESS").length;
    const warn = checks.filter(c => c.status === "WARNING").length;
    console.log(`${ok}/${scored.length} checks passed` + (warn ? `, ${warn} warnings` : ""));
    for (const c of checks.filter(c => c.status === "FAILURE" || c.status === "WARNING"))
      console.log(`    ${c.status} ${c.id}: ${c.errorMessage ?? ""}` +
        (c.details ? `\n      details: ${JSON.stringify(c.details).slice(0, 600)}` : ""));
  ' "$checks")
  if [ "$rc" -eq 0 ] && [ -n "$checks" ]; then
    echo "PASS $s: $summary"
  else
    failed=1
    echo "FAIL $s (exit $rc): $summary"
  fi
  if [ "${CONFORMANCE_VERBOSE:-0}" = 1 ] || { [ "$rc" -ne 0 ] && [ -z "$checks" ]; }; then
    # strip ANSI colours from the CLI output
    sed 's/\x1b\[[0-9;]*m//g; s/^/    | /' "$WORK/$s.log"
  fi
done
exit $failed
