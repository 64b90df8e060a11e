# Build image for policy manylinux2014 = manylinux_2_17 (CentOS 7): the pinned manylinux
# image plus the system libraries a geospatial build may want (PROJ's optional TIFF and
# CURL support). geonox passes BASE as the pinned reference (name@sha256:…).
ARG BASE
FROM ${BASE}
RUN yum install -y zlib-devel libtiff-devel libcurl-devel openssl-devel \
 && yum clean all && rm -rf /var/cache/yum
