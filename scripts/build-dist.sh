#!/usr/bin/env bash
# Builds every installable artifact into dist/ (release builds, this platform):
#   dist/flowscope-<version>-<target>      the agent binary (`cargo install --path agent` also works)
#   dist/flowscope-<version>-*.whl         the Python wheel: the SDK's extension, which also runs
#                                          the bundled agent as the `flowscope` command
#   dist/flowscope-<version>.tar.gz        the Python sdist (builds from source where cargo exists;
#                                          carries sdk-rust and the agent sources)
#   dist/flowscope-<version>.tgz           the npm package, with the prebuilt addon for this
#                                          platform (the agent inside; `npx flowscope` runs it)
# More platforms are more runs of this script on those platforms (or cross targets).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cache="${FLOWSCOPE_CACHE:-$HOME/.cache/flowscope}"
dist="${DIST_DIR:-$root/dist}"
mkdir -p "$dist" "$cache"
version="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "flowscope-agent"))')"
target="$(rustc -vV | sed -n 's/^host: //p')"
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"

echo "== agent binary"
cargo build --release --locked -p flowscope-agent
install -m 0755 "$target_dir/release/flowscope" "$dist/flowscope-$version-$target"

echo "== Python wheel + sdist"
venv="$cache/venv-dist"
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r sdk-python/requirements-dist.txt
rm -f "$dist"/flowscope-"$version"*.whl "$dist"/flowscope-"$version".tar.gz
CARGO_TARGET_DIR="$cache/target-python" "$venv/bin/maturin" build --release --locked \
    -m sdk-python/Cargo.toml --out "$dist" --quiet
"$venv/bin/maturin" sdist -m sdk-python/Cargo.toml --out "$dist"

echo "== npm package"
(
    cd sdk-node
    npm install --no-audit --no-fund --prefer-offline --ignore-scripts
    npm run build
    rm -f "$dist/flowscope-$version.tgz"
    npm pack --pack-destination "$dist" >/dev/null
)
ls -la "$dist"
