# infergate's container image: built on Debian 12 with the project's own scripts, run from
# a slim Debian 12 with only the shared libraries the binary links.
#
#   docker build -t infergate:latest .
#   docker run --rm infergate:latest check -f /etc/infergate   # or: serve --kubernetes
#
# The build stage compiles for x86-64 with AVX2 (the JSON hot path); pass
# --build-arg CMAKE_ARGS=-DINFERGATE_X86_HASWELL=OFF for older CPUs.
FROM debian:12 AS build
ARG CMAKE_ARGS=""
WORKDIR /src
COPY . .
# scripts/setup.sh installs the build dependencies from Debian (as root, idempotent);
# scripts/build.sh configures and builds into build/.
RUN bash scripts/setup.sh \
 && BUILD_DIR=build bash scripts/build.sh -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS} \
 && strip -o /infergate build/infergate

FROM debian:12-slim
# The shared libraries of the binary (ldd build/infergate, by Debian package; libc6,
# libstdc++6 and libgcc-s1 are in the base image). Modules that link more (gRPC, NATS)
# add theirs here.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libyaml-cpp0.7 libspdlog1.10 libfmt9 libsimdjson14 libjemalloc2 \
      libssl3 libxxhash0 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /infergate /usr/local/bin/infergate
# 65532: an unprivileged user without a home or shell (the Deployment runs as it too).
USER 65532:65532
EXPOSE 8080 8081 9901
ENTRYPOINT ["/usr/local/bin/infergate"]
CMD ["serve", "--kubernetes", "--admin-address=0.0.0.0:9901"]
