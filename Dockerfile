# The operator image: a static-ish release build on a distroless, non-root base.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# `headroom simulate` embeds the example policies.
COPY deploy/examples ./deploy/examples
RUN cargo build --release --locked --bin headroom

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/headroom /usr/local/bin/headroom
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/headroom"]
CMD ["run"]
