#!/bin/sh
# Runs inside the x86_64 rootfs (chroot) after layout.sh: a second CPython built from its
# release source (Debian's orig tarball of 3.11.2, the upstream Python-3.11.2.tgz, checked
# by sha256 before it gets here) into /opt/python/cp311-cp311, as manylinux images build
# theirs: against the image's own glibc (2.31), static libpython, pip from ensurepip.
# Part of the recipe hash.
set -eu
cd /tmp
tar -xzf python3.11.orig.tar.gz
cd Python-3.11.2
# -O2 without -g, no test modules: a test image's interpreter, built in the suite's time
OPT="-O2 -Wall" ./configure --quiet --prefix=/opt/python/cp311-cp311 --disable-test-modules \
  --with-ensurepip=install >/tmp/cpython-configure.log
make --quiet -j"$(nproc)" >/tmp/cpython-make.log 2>&1 || { tail -50 /tmp/cpython-make.log; exit 1; }
make --quiet install >/tmp/cpython-install.log 2>&1 || { tail -50 /tmp/cpython-install.log; exit 1; }
cd /opt/python/cp311-cp311
ln -sf python3.11 bin/python
ln -sf pip3.11 bin/pip
rm -rf lib/python3.11/test lib/python3.11/idlelib lib/python3.11/tkinter lib/python3.11/turtledemo
find lib -name __pycache__ -prune -exec rm -rf {} +
bin/python -c 'import ssl, sqlite3, ctypes, lzma, bz2, zlib, uuid, venv; print("cp311 ok")'
cd / && rm -rf /tmp/Python-3.11.2 /tmp/python3.11.orig.tar.gz /tmp/cpython-*.log
