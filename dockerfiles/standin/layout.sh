#!/bin/sh
# Runs inside the debootstrap'ed rootfs (chroot; through qemu-aarch64 for arm64) before it
# is packed.  Lays it out like a manylinux image and trims caches.  Part of the recipe hash.
# Arguments: the /opt/python tag and the suite's interpreter (cp39-cp39 python3.9).
set -eu
tag=${1:-cp39-cp39}
py=${2:-python3.9}
mkdir -p /opt/python/$tag/bin
for n in python python3 $py; do
  ln -sf /usr/bin/$py /opt/python/$tag/bin/$n
done
cat >/opt/python/$tag/bin/pip <<PIP
#!/bin/sh
exec /opt/python/$tag/bin/python -m pip "\$@"
PIP
chmod 755 /opt/python/$tag/bin/pip
ln -sf pip /opt/python/$tag/bin/pip3
# prove the layout works before it is cached: venv from the /opt/python symlink
/opt/python/$tag/bin/python -m venv --without-pip /tmp/venv-check
/tmp/venv-check/bin/python -c 'import sys; assert sys.prefix == "/tmp/venv-check", sys.prefix'
rm -rf /tmp/venv-check
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/apt/* /var/log/dpkg.log \
       /usr/share/doc/* /usr/share/man/* /usr/share/info/* /tmp/* /root/.cache
