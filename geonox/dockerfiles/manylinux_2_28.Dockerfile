# Build image for policy manylinux_2_28 (AlmaLinux 8): the pinned manylinux image plus the
# system libraries a geospatial build may want (PROJ's optional TIFF and CURL support).
# geonox passes BASE as the pinned reference (name@sha256:…) from geonox-images.lock.
ARG BASE
FROM ${BASE}
RUN dnf install -y zlib-devel libtiff-devel libcurl-devel openssl-devel \
 && dnf clean all && rm -rf /var/cache/dnf
