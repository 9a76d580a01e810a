#!/usr/bin/env bash
# Copy the browser builds of the npm dependencies into portal_site/static/vendor, served at /static/vendor.
set -euo pipefail
cd "$(dirname "$0")/.."
dst=portal_site/static/vendor
rm -rf "$dst" && mkdir -p "$dst"
cp node_modules/maplibre-gl/dist/maplibre-gl.js node_modules/maplibre-gl/dist/maplibre-gl.css "$dst/"
cp node_modules/maplibre-gl/LICENSE.txt "$dst/maplibre-gl.LICENSE.txt"
cp node_modules/htmx.org/dist/htmx.min.js "$dst/"
cp node_modules/chart.js/dist/chart.umd.min.js "$dst/chart.umd.min.js"
cp node_modules/chart.js/LICENSE.md "$dst/chart.js.LICENSE.md"
# pmtiles (BSD-3-Clause): the browser build bundles fflate (MIT); the npm package ships no license file
cp node_modules/pmtiles/dist/pmtiles.js "$dst/pmtiles.js"
cp node_modules/fflate/LICENSE "$dst/fflate.LICENSE.txt"
node -e 'const p=require("./node_modules/pmtiles/package.json"); console.log(`${p.name} ${p.version}: ${p.license} (${p.homepage})`)' > "$dst/pmtiles.LICENSE.txt"
