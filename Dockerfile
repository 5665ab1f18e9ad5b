# lbd container image. Build and run from the repository root:
#   docker build -t lbd .
#   docker run --rm -p 8080:8080 -p 8443:8443 lbd
#   docker run --rm -v $PWD/lb.yaml:/etc/lbd/lb.yaml:ro -p 8080:8080 lbd   # your own config
#
# Docker's default seccomp profile denies io_uring (since Docker 25.0); lbd logs why and runs
# on its epoll driver. A profile that also allows io_uring_setup, io_uring_enter and
# io_uring_register (--security-opt seccomp=FILE) lets it use io_uring.

# --- build: the same steps as the README's quick start ------------------------------------------
FROM debian:bookworm AS build
WORKDIR /src
# The packages first, in their own layer, so that a source change does not reinstall them.
COPY deploy/bootstrap.sh deploy/bootstrap.sh
RUN bash deploy/bootstrap.sh build && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake --preset release -DLBD_BUILD_TESTS=OFF -DLBD_BUILD_BENCH=OFF \
 && cmake --build --preset release --target lbd \
 && build/release/cmd/lbd -t --config deploy/docker/lb.yaml

# --- runtime: the binary and the shared libraries it links -------------------------------------
FROM debian:bookworm-slim
# The packages of what `ldd build/release/cmd/lbd` lists: liburing.so.2 (liburing2),
# libyaml-cpp.so.0.7 (libyaml-cpp0.7), libspdlog.so.1.10 (libspdlog1.10), libfmt.so.9 (libfmt9),
# libssl.so.3 and libcrypto.so.3 (libssl3, for TLS). libc6, libstdc++6 and libgcc-s1 are in the
# base image already (apt needs them).
RUN apt-get update \
 && apt-get install -y --no-install-recommends liburing2 libyaml-cpp0.7 libspdlog1.10 libfmt9 libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin lbd
COPY --from=build /src/build/release/cmd/lbd /usr/local/bin/lbd
COPY deploy/docker/lb.yaml /etc/lbd/lb.yaml
# Fail the image build, not the first start, when a library is missing or the config is bad.
RUN ! ldd /usr/local/bin/lbd | grep 'not found' \
 && lbd -t --config /etc/lbd/lb.yaml
USER lbd
EXPOSE 8080 8443
# SIGTERM drains (shutdown.drain_timeout, 8s in this config: below docker stop's 10s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["lbd"]
CMD ["--config", "/etc/lbd/lb.yaml"]
