#!/bin/sh
# Runs in the musllinux stand-in while it is built (see Dockerfile beside it).
set -eu
s=/tmp/musl-stage
# the toolchain: headers, crt files, libc.a/libc.so for the linker, musl-gcc and its specs
cp -a "$s/usr/." /usr/
# the loader (musl's libc itself), under Alpine's names
cp "$s/ld-musl-x86_64.so.1" /lib/ld-musl-x86_64.so.1.new
mv -f /lib/ld-musl-x86_64.so.1.new /lib/ld-musl-x86_64.so.1
ln -sf ld-musl-x86_64.so.1 /lib/libc.musl-x86_64.so.1
# musl's system libraries (Alpine keeps them in /lib; here a directory of their own, away
# from glibc's ldconfig), and musl's library path
mkdir -p /opt/musl/lib
cp -a "$s/lib/." /opt/musl/lib/
printf '/lib\n/opt/musl/lib\n' >/etc/ld-musl-x86_64.path
# the compilers and ldd a build finds first on PATH
for n in cc gcc; do ln -sf /usr/bin/musl-gcc /usr/local/bin/$n; done
# no musl C++ compiler: c++ names itself (a toolchain's identity asks) and refuses to compile
for n in c++ g++; do
  cat >/usr/local/bin/$n <<CXX
#!/bin/sh
[ "\$1" = --version ] && { echo "$n (musllinux stand-in: no C++ compiler)"; exit 0; }
echo "$n: the musllinux stand-in has no musl C++ compiler (C only)" >&2
exit 1
CXX
  chmod 755 /usr/local/bin/$n
done
printf '#!/bin/sh\nexec /lib/ld-musl-x86_64.so.1 --list "$@"\n' >/usr/local/bin/ldd
chmod 755 /usr/local/bin/ldd
# /opt/python: the musl CPython alone (the manylinux stand-in's glibc ones go)
find /opt/python -mindepth 1 -maxdepth 1 ! -name cp313-cp313 -exec rm -rf {} +
ln -sf python3.13 /opt/python/cp313-cp313/bin/python
# prove it before it is pushed: a venv of the musl CPython, and a C program built by cc
# that needs libc.musl-x86_64.so.1 and runs
/opt/python/cp313-cp313/bin/python -m venv --without-pip /tmp/venv-check
/tmp/venv-check/bin/python -c 'import sysconfig, sys; assert sys.prefix == "/tmp/venv-check"; assert "musl" in sysconfig.get_config_var("SOABI")'
printf 'int main(void) { return 0; }\n' >/tmp/check.c
cc -o /tmp/check /tmp/check.c
/tmp/check
readelf -d /tmp/check | grep -q 'NEEDED.*\[libc.musl-x86_64.so.1\]'
ldd /tmp/check | grep -q 'ld-musl-x86_64.so.1'
rm -rf /tmp/venv-check /tmp/check /tmp/check.c
