#!/bin/sh
# Re-vendors the web UI's libraries (priv/ui/vendor) from npm, at the versions below,
# and rewrites priv/ui/vendor/MANIFEST.json (versions, npm integrity, SHA-256 of each
# shipped file). The UI has no build step: these files are served as they are.
#
# What is changed from the npm files, and why:
#   - hooks.mjs imports "preact" by its bare name, which a browser cannot resolve
#     without an import map (an inline script, which our Content-Security-Policy
#     forbids): the import is rewritten to "./preact.mjs";
#   - the "//# sourceMappingURL=" line is dropped (the maps are not shipped).
#
# Usage: scripts/vendor_ui.sh   (needs npm, tar, sha256sum, node)
set -eu

PREACT=11.2.0
HTM=3.1.1

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/priv/ui/vendor"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$work"
for pkg in "preact@$PREACT" "htm@$HTM"; do
  npm pack --silent "$pkg" >/dev/null
done
mkdir preact htm
tar xzf "preact-$PREACT.tgz" -C preact
tar xzf "htm-$HTM.tgz" -C htm

strip_map() { sed '/^\/\/# sourceMappingURL=/d' "$1"; }

mkdir -p "$out"
strip_map preact/package/dist/preact.mjs > "$out/preact.mjs"
strip_map preact/package/hooks/dist/hooks.mjs | sed 's|from"preact"|from"./preact.mjs"|g' > "$out/hooks.mjs"
strip_map htm/package/dist/htm.module.js > "$out/htm.mjs"
cp preact/package/LICENSE "$out/LICENSE.preact.txt"
cp htm/package/LICENSE "$out/LICENSE.htm.txt"

if grep -q 'from"preact"' "$out/hooks.mjs"; then
  echo "vendor_ui: hooks.mjs still imports \"preact\" by name" >&2
  exit 1
fi

integrity() { npm view "$1" dist.integrity; }
sha() { sha256sum "$out/$1" | cut -d' ' -f1; }

cat > "$out/MANIFEST.json" <<JSON
{
  "note": "Written by scripts/vendor_ui.sh: do not edit by hand. test/ui_assets_test.exs checks every SHA-256.",
  "packages": [
    {"name": "preact", "version": "$PREACT", "license": "MIT", "npm_integrity": "$(integrity "preact@$PREACT")",
     "files": {"preact.mjs": "dist/preact.mjs", "hooks.mjs": "hooks/dist/hooks.mjs (import of \"preact\" rewritten to \"./preact.mjs\")", "LICENSE.preact.txt": "LICENSE"}},
    {"name": "htm", "version": "$HTM", "license": "Apache-2.0", "npm_integrity": "$(integrity "htm@$HTM")",
     "files": {"htm.mjs": "dist/htm.module.js", "LICENSE.htm.txt": "LICENSE"}}
  ],
  "sha256": {
    "preact.mjs": "$(sha preact.mjs)",
    "hooks.mjs": "$(sha hooks.mjs)",
    "htm.mjs": "$(sha htm.mjs)",
    "LICENSE.preact.txt": "$(sha LICENSE.preact.txt)",
    "LICENSE.htm.txt": "$(sha LICENSE.htm.txt)"
  }
}
JSON
node -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' "$out/MANIFEST.json"
echo "vendor_ui: preact $PREACT and htm $HTM in $out"
