#!/bin/bash
# Pack what a bare x86-64 NVIDIA host (Ubuntu, CUDA driver, no Node.js, no network) needs to run this
# project through WebGPU/Vulkan: the Node.js binary, the project's node_modules (linux-x64 dawn.node only)
# and Debian's Vulkan loader + GL dispatch libraries, which the NVIDIA Vulkan driver needs.
#   usage: bash scripts/gpu/pack.sh [OUT_DIR]      (run in the project root, after npm install)
# OUT_DIR defaults to .gpu; keep it out of git (add it to .git/info/exclude) and carry it.
set -euo pipefail
out=${1:-.gpu}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -d node_modules ] || { echo "pack: run npm install first (no node_modules here)" >&2; exit 1; }
mkdir -p "$out/debs"
cp "$here/boot.sh" "$out/boot.sh"
if [ ! -f "$out/node.xz" ] || [ "$(readlink -f "$(command -v node)")" -nt "$out/node.xz" ]; then
  xz -T0 -6 -c "$(readlink -f "$(command -v node)")" > "$out/node.xz"
fi
if ! ls "$out"/debs/libvulkan1_*.deb >/dev/null 2>&1; then
  (cd "$out/debs" && apt-get download libvulkan1 libglvnd0 libegl1 libgl1 libglx0 libgles2 libopengl0 2>&1 | grep -v unsandboxed || true)
fi
# the production node_modules only (the test clients are devDependencies), without the other platforms' dawn builds
prod=$(mktemp -d)
trap 'rm -rf "$prod"' EXIT
cp package.json package-lock.json "$prod/"
(cd "$prod" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null)
tar -C "$prod" --exclude='node_modules/webgpu/dist/darwin-*' --exclude='node_modules/webgpu/dist/win32-*' \
    --exclude='node_modules/webgpu/dist/linux-arm64' --exclude='node_modules/.cache' \
    -cf - node_modules | xz -T0 -3 > "$out/node_modules.tar.xz"
du -sh "$out"; ls -la "$out"
