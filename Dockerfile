# One image for every role: `granary metanode|datanode|s3|csi|operator|mount|…`.
#   docker build -t ghcr.io/granary/granary:0.1.0 .
# Tag it with the project version (CMakeLists.txt project(VERSION)): the chart's appVersion and
# the operator's default image are that tag (tests/operator_version_test.sh keeps them equal).
# Stage 1 builds on Debian 12 with the project's own install script; stage 2 is Debian 12 slim
# with exactly the shared libraries the binary links (found by ldd, mapped to their packages)
# plus fuse3 for the CSI node plugin's mounts and systemd for its systemd-run (mount supervisors
# outside the plugin container's cgroup).

FROM debian:12 AS builder
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends ca-certificates sudo \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -G Ninja -S . -B /build -DCMAKE_BUILD_TYPE=Release -Wno-dev \
    && cmake --build /build --target granary \
    && strip /build/bin/granary
# The Debian packages that own every shared library the binary loads.
RUN scripts/runtime-packages.sh /build/bin/granary >/build/runtime-packages.txt \
    && cat /build/runtime-packages.txt

FROM debian:12-slim
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=builder /build/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update -qq \
    && xargs -a /tmp/runtime-packages.txt apt-get install -y -qq --no-install-recommends \
    && apt-get install -y -qq --no-install-recommends fuse3 ca-certificates util-linux systemd \
    && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt
COPY --from=builder /build/bin/granary /usr/local/bin/granary
RUN granary --help >/dev/null
# Roles that need root (datanode hostPath, CSI node mounts) get it from their pod spec; the
# operator's chart runs it as 65532.
ENTRYPOINT ["granary"]
CMD ["--help"]
