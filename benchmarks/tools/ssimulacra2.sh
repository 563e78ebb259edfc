#!/usr/bin/env bash
# Builds the reference SSIMULACRA2 tool (libjxl's tools/ssimulacra2, BSD-3-Clause) from the
# Debian source package of libjxl into benchmarks/.cache/ssimulacra2/bin/ssimulacra2.
#
# Debian ships no ssimulacra2 binary (bookworm's libjxl-devtools 0.7 has only the first
# ssimulacra), and bookworm's libjxl source predates the tool, so the source is the upstream
# tarball of trixie's jpeg-xl package (0.11.2) from Debian's pool on deb.debian.org, checked
# against a pinned SHA-256. Build dependencies come from bookworm. Nothing is downloaded
# from GitHub. Idempotent: an existing binary that answers is kept.
#
#   benchmarks/tools/ssimulacra2.sh          # build (or reuse) and print the binary's path
#   SSIMULACRA2_CACHE=/some/dir ...          # cache somewhere else
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${SSIMULACRA2_CACHE:-$root/benchmarks/.cache/ssimulacra2}"
bin="$cache/bin/ssimulacra2"
version="0.11.2"
sha256="ab38928f7f6248e2a98cc184956021acb927b16a0dee71b4d260dc040a4320ea"
tarball="jpeg-xl_${version}.orig.tar.gz"
# libjxl 0.11 needs Highway >= 1.0.7 and bookworm has 1.0.3: trixie's highway source, built
# in-tree as libjxl's third_party/highway.
hwy_tarball="highway_1.2.0.orig.tar.gz"
hwy_sha256="7e0be78b8318e8bdbf6fa545d2ecb4c90f947df03f7aadc42c1967f019e63343"

# Without arguments the tool prints its usage and exits 1: the usage proves it runs.
if [ -x "$bin" ] && { "$bin" 2>&1 || true; } | grep -q -i "usage"; then
  echo "$bin"
  exit 0
fi

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

deps=(curl ca-certificates cmake ninja-build g++ pkg-config liblcms2-dev libbrotli-dev libpng-dev
      libjpeg-dev libgif-dev)
missing=()
for p in "${deps[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo_ apt-get update -qq
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

mkdir -p "$cache/src"
cd "$cache/src"
# Upstream tarballs of trixie's source packages, from Debian's pool; the pins make a changed
# or truncated download fail here rather than in the compiler.
fetch() {  # fetch POOLDIR TARBALL SHA256
  if ! echo "$3  $2" | sha256sum -c --status 2>/dev/null; then
    curl -fsSL --retry 3 -o "$2.part" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}/pool/main/$1/$2"
    echo "$3  $2.part" | sha256sum -c - >&2
    mv "$2.part" "$2"
  fi
}
fetch j/jpeg-xl "$tarball" "$sha256"
fetch h/highway "$hwy_tarball" "$hwy_sha256"

top() { tar tzf "$1" | awk -F/ 'NR == 1 {print $1}'; }
src="$(top "$tarball")"
hwy="$(top "$hwy_tarball")"
rm -rf "$src" "$hwy" build
tar xzf "$tarball"
tar xzf "$hwy_tarball"
rm -rf "$src/third_party/highway"
mv "$hwy" "$src/third_party/highway"
# One SIMD target (the baseline) instead of Highway's dynamic dispatch over several: a third
# of the compile time, and a reference tool needs no speed.
cmake -S "$src" -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
  -DCMAKE_CXX_FLAGS="-DHWY_COMPILE_ONLY_STATIC=1" \
  -DJPEGXL_ENABLE_DEVTOOLS=ON -DJPEGXL_ENABLE_TOOLS=ON -DJPEGXL_ENABLE_BENCHMARK=OFF \
  -DJPEGXL_ENABLE_EXAMPLES=OFF -DJPEGXL_ENABLE_JNI=OFF -DJPEGXL_ENABLE_MANPAGES=OFF \
  -DJPEGXL_ENABLE_SJPEG=OFF -DJPEGXL_ENABLE_OPENEXR=OFF -DJPEGXL_ENABLE_SKCMS=OFF \
  -DJPEGXL_ENABLE_JPEGLI=OFF -DJPEGXL_ENABLE_DOXYGEN=OFF -DJPEGXL_ENABLE_PLUGINS=OFF \
  -DJPEGXL_ENABLE_TCMALLOC=OFF -DJPEGXL_FORCE_SYSTEM_BROTLI=ON \
  -DJPEGXL_FORCE_SYSTEM_LCMS2=ON -DJPEGXL_STATIC=OFF -DBUILD_SHARED_LIBS=OFF >&2
ninja -C build -j "${SSIMULACRA2_JOBS:-2}" ssimulacra2 >&2
mkdir -p "$cache/bin"
install -m 0755 build/tools/ssimulacra2 "$bin"
strip "$bin" || true
cp "$src/LICENSE" "$cache/LICENSE"
rm -rf build "$src"
echo "$bin"
