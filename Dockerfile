# The operator image, for users with a registry: the same image `scripts/image.sh` builds
# here without one (it builds from exactly the files this Dockerfile copies, so a missing
# COPY fails there too). A static (musl) binary on an empty base, run as 65532.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# `headroom simulate` embeds the example policies.
COPY deploy/examples ./deploy/examples
RUN cargo build --release --locked --target x86_64-unknown-linux-musl --no-default-features --bin headroom
RUN mkdir -p /out/etc/ssl/certs \
 && cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ \
 && echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin' >/out/etc/passwd \
 && echo 'nonroot:x:65532:' >/out/etc/group

FROM scratch
COPY --from=build /out/etc /etc
COPY --from=build /src/target/x86_64-unknown-linux-musl/release/headroom /usr/local/bin/headroom
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# No transparent huge pages for the allocator, even where the kernel uses them by default.
ENV MIMALLOC_ALLOW_THP=0
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/headroom"]
CMD ["run"]
