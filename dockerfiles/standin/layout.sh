#!/bin/sh
# Runs inside the debootstrap'ed rootfs (chroot; through qemu-aarch64 for arm64) before it
# is packed.  Lays it out like a manylinux image and trims caches.  Part of the recipe hash.
set -eu
mkdir -p /opt/python/cp39-cp39/bin
for n in python python3 python3.9; do
  ln -sf /usr/bin/python3.9 /opt/python/cp39-cp39/bin/$n
done
cat >/opt/python/cp39-cp39/bin/pip <<'PIP'
#!/bin/sh
exec /opt/python/cp39-cp39/bin/python -m pip "$@"
PIP
chmod 755 /opt/python/cp39-cp39/bin/pip
ln -sf pip /opt/python/cp39-cp39/bin/pip3
# prove the layout works before it is cached: venv from the /opt/python symlink
/opt/python/cp39-cp39/bin/python -m venv --without-pip /tmp/venv-check
/tmp/venv-check/bin/python -c 'import sys; assert sys.prefix == "/tmp/venv-check", sys.prefix'
rm -rf /tmp/venv-check
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/apt/* /var/log/dpkg.log \
       /usr/share/doc/* /usr/share/man/* /usr/share/info/* /tmp/* /root/.cache
