#!/usr/bin/env bash
# Vendors the web app's third-party code from the npm registry at exact
# versions: the files the app imports go to web/vendor/, and
# web/vendor/VERSIONS records each one's package, version, license and
# SHA-256 (tests/web.rs checks the files against it). Run it to upgrade;
# commit what it writes. Nothing is fetched at build or run time.
set -euo pipefail
cd "$(dirname "$0")"

# package@version  file in the package  name in web/vendor/
FILES=(
  "marked@18.2.1 package/lib/marked.esm.js marked.esm.js"
  "dompurify@3.5.0 package/dist/purify.es.mjs purify.es.mjs"
  "uplot@1.6.32 package/dist/uPlot.esm.js uPlot.esm.js"
  "uplot@1.6.32 package/dist/uPlot.min.css uPlot.min.css"
  "@highlightjs/cdn-assets@11.11.1 package/es/highlight.min.js highlight.min.js"
  "@highlightjs/cdn-assets@11.11.1 package/styles/github-dark.min.css highlight.min.css"
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=vendor/VERSIONS
echo "# file  package  version  license  sha256 (written by web/vendor.sh)" > "$out"
for entry in "${FILES[@]}"; do
  read -r spec inner name <<<"$entry"
  pkg=${spec%@*}
  version=${spec##*@}
  tgz=$(cd "$work" && npm pack --silent "$spec")
  tar -xzf "$work/$tgz" -C "$work" "$inner" package/package.json
  cp "$work/$inner" "vendor/$name"
  license=$(node -p "require('$work/package/package.json').license")
  sum=$(sha256sum "vendor/$name" | cut -d' ' -f1)
  echo "$name  $pkg  $version  $license  $sum" >> "$out"
  rm -rf "$work/package"
done
cat "$out"
