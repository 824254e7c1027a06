# Tollgate node image. Build: docker build -t tollgate .
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libclang-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin tollgate

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /data tollgate && mkdir -p /data && chown tollgate /data
COPY --from=build /src/target/release/tollgate /usr/local/bin/tollgate
USER tollgate
WORKDIR /data
ENV TOLLGATE_SERVER__DATA_DIR=/data TOLLGATE_SERVER__LISTEN=0.0.0.0:8080
EXPOSE 8080 7946/udp
ENTRYPOINT ["tollgate"]
CMD ["serve"]
