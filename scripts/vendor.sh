#!/bin/sh
# Re-vendor the front end's two libraries into static/vendor/<name>-<version>/.
# Parley has no build step: we copy the published ESM builds, pinned by the version in the
# directory name, with their licences beside them. Run from the repository root, then update
# the import paths in static/parley/markdown.js and delete the old directories.
# Usage: scripts/vendor.sh [marked-version] [dompurify-version]   (default: latest)
set -eu
root=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm init -y >/dev/null
# --ignore-scripts: nothing from the registry runs on this machine.
npm install --ignore-scripts --no-audit --no-fund "marked@${1:-latest}" "dompurify@${2:-latest}" >/dev/null

version() { node -p "require('./node_modules/$1/package.json').version"; }

m="$root/static/vendor/marked-$(version marked)"
mkdir -p "$m"
# The source map is copied too: ManifestStaticFilesStorage fails on a missing sourceMappingURL.
cp node_modules/marked/lib/marked.esm.js node_modules/marked/lib/marked.esm.js.map \
   node_modules/marked/lib/marked.d.ts node_modules/marked/LICENSE "$m/"

d="$root/static/vendor/dompurify-$(version dompurify)"
mkdir -p "$d"
cp node_modules/dompurify/dist/purify.es.mjs node_modules/dompurify/dist/purify.es.mjs.map \
   node_modules/dompurify/dist/purify.es.d.mts node_modules/dompurify/LICENSE node_modules/dompurify/LICENSE-MPL "$d/"
echo "vendored: $m $d"
