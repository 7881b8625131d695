# syntax=docker/dockerfile:1
# email-otp container image: a static binary on distroless, running as non-root.
#   docker build -t email-otp .                (or: skaffold dev, see skaffold.yaml)
#   docker run --rm email-otp check-config
# Ports: 8080 HTTP API, 9090 admin (/metrics, /healthz, /readyz).

# Multi-arch: the builder runs on the build machine's platform and cross-compiles for the
# target platform (no emulation), e.g.
#   docker buildx build --platform linux/amd64,linux/arm64 -t email-otp .
# TARGETARCH (amd64, arm64) picks the Rust target; building for another architecture
# installs that architecture's cross gcc and libc (the static link needs its libc.a).
FROM --platform=$BUILDPLATFORM rust:1.95-bookworm AS builder
ARG TARGETARCH
# Compiled into email_otp_build_info{git_sha}:
#   --build-arg EMAIL_OTP_GIT_SHA=$(git rev-parse --short HEAD)
ARG EMAIL_OTP_GIT_SHA=unknown
# Linkers and C compilers (ring) of both targets; on the native architecture they are the
# host gcc's own names.
ENV CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER=x86_64-linux-gnu-gcc \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CC_x86_64_unknown_linux_gnu=x86_64-linux-gnu-gcc \
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
    AR_x86_64_unknown_linux_gnu=x86_64-linux-gnu-ar \
    AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
# The cross toolchain is whatever the builder image's Debian release ships.
# hadolint ignore=DL3008
RUN set -eu; \
    arch="${TARGETARCH:-$(dpkg --print-architecture)}"; \
    case "$arch" in \
      amd64) target="x86_64-unknown-linux-gnu"; gcc="gcc-x86-64-linux-gnu"; libc="libc6-dev-amd64-cross" ;; \
      arm64) target="aarch64-unknown-linux-gnu"; gcc="gcc-aarch64-linux-gnu"; libc="libc6-dev-arm64-cross" ;; \
      *) echo "unsupported TARGETARCH '$arch' (amd64 or arm64)" >&2; exit 1 ;; \
    esac; \
    echo "$target" > /rust-target; \
    if [ "$arch" != "$(dpkg --print-architecture)" ]; then \
      apt-get update; \
      apt-get install -y --no-install-recommends "$gcc" "$libc"; \
      rm -rf /var/lib/apt/lists/*; \
    fi; \
    rustup target add "$target"
WORKDIR /src
COPY . .
# Static glibc binary (static-pie): runs on distroless/static without a libc.
# Cache mounts keep the crate registry and target/ between builds (target/ per architecture).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target,id=email-otp-target-$TARGETARCH \
    target="$(cat /rust-target)" \
    && RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --release --locked --target "$target" --bin email-otp \
    && install -D -m 0755 "target/$target/release/email-otp" /out/email-otp

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
