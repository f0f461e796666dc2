# syntax=docker/dockerfile:1
# The service alone: it needs an external PostgreSQL (DATABASE_URL), see docker-compose.yml.

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the build directory between builds; the binary is copied
# out because the cache mount is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin callingcard \
    && install -m 0755 target/release/callingcard /usr/local/bin/callingcard

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 callingcard \
    && useradd --system --uid 10001 --gid callingcard --home-dir /nonexistent \
        --no-create-home --shell /usr/sbin/nologin callingcard
COPY --from=builder /usr/local/bin/callingcard /usr/local/bin/callingcard
USER 10001:10001
ENV BIND_ADDR=0.0.0.0:8000
EXPOSE 8000
ENTRYPOINT ["callingcard"]
CMD ["serve"]
