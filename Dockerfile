# syntax=docker/dockerfile:1
# email-otp container image: a static binary on distroless, running as non-root.
#   docker build -t email-otp .                (or: skaffold dev, see skaffold.yaml)
#   docker run --rm email-otp check-config
# Ports: 8080 HTTP API, 9090 admin (/metrics, /healthz, /readyz).

FROM rust:1.95-bookworm AS builder
# Compiled into email_otp_build_info{git_sha}:
#   --build-arg EMAIL_OTP_GIT_SHA=$(git rev-parse --short HEAD)
ARG EMAIL_OTP_GIT_SHA=unknown
WORKDIR /src
COPY . .
# Static glibc binary (static-pie): runs on distroless/static without a libc.
# Cache mounts keep the crate registry and target/ between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --release --locked --target x86_64-unknown-linux-gnu --bin email-otp \
    && install -D -m 0755 target/x86_64-unknown-linux-gnu/release/email-otp /out/email-otp

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="email-otp" \
      org.opencontainers.image.description="Proves a person controls an email address with a one-time code" \
      org.opencontainers.image.source="https://github.com/email-otp/email-otp" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /app
COPY --from=builder /out/email-otp /usr/local/bin/email-otp
# mail.template_dir defaults to "mailer", relative to WORKDIR.
COPY mailer/ /app/mailer/
# distroless "nonroot" (65532), numeric so Kubernetes can verify runAsNonRoot.
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/email-otp"]
CMD ["serve"]
