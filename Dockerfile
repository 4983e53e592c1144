# syntax=docker/dockerfile:1.7
# One image recipe for every Gatehouse service, built from the workspace lock.
#
#   docker build --build-arg SERVICE=gateway -t gatehouse-gateway:0.1.0 .
#
# SERVICE is a workspace member (gateway, authors, realtime, auth) or `all` (every
# service, for `gatehouse run all`). The authors image also runs `gatehouse run relay`
# and `gatehouse migrate authors`; the auth image runs `gatehouse migrate auth`.
# With no arguments the container runs `gatehouse run $SERVICE`; arguments go to the
# `gatehouse` command instead (`docker run gatehouse-authors migrate authors`).
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# ---------------------------------------------------------------- build stage
FROM ${PYTHON_IMAGE} AS build
ARG SERVICE=gateway
# The uv of the Makefile (UV_VERSION), from PyPI like everything else.
ARG UV_VERSION=0.13.9
RUN python -m pip install --no-cache-dir "uv==${UV_VERSION}"
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/gatehouse
WORKDIR /src

# Third-party dependencies first: this layer changes only with the lock.
COPY uv.lock pyproject.toml ./
COPY libs/common/pyproject.toml libs/common/
COPY gateway/pyproject.toml gateway/
COPY services/authors/pyproject.toml services/authors/
COPY services/realtime/pyproject.toml services/realtime/
COPY services/auth/pyproject.toml services/auth/
RUN set -eu; \
    if [ "$SERVICE" = all ]; then package=gatehouse; else package="gatehouse-$SERVICE"; fi; \
    uv sync --frozen --no-dev --no-install-workspace --package "$package"

# Then our own code, installed as wheels (no editable links into /src).
COPY README.md ./
COPY src src
COPY libs libs
COPY gateway gateway
COPY services services
# The launcher (`gatehouse run ...`, the root distribution) imports only the service
# it runs, so it goes in without pulling every other service.
RUN set -eu; \
    if [ "$SERVICE" = all ]; then package=gatehouse; else package="gatehouse-$SERVICE"; fi; \
    uv sync --frozen --no-dev --no-editable --package "$package"; \
    uv pip install --python /opt/gatehouse/bin/python --no-deps --no-cache --compile-bytecode .; \
    /opt/gatehouse/bin/gatehouse --help >/dev/null

# ---------------------------------------------------------------- final stage
FROM ${PYTHON_IMAGE} AS runtime
ARG SERVICE=gateway
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=""
LABEL org.opencontainers.image.title="gatehouse-${SERVICE}" \
      org.opencontainers.image.description="Gatehouse ${SERVICE}: an API gateway and the services behind it" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.vendor="Gatehouse" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

# No package manager tooling left for an intruder: pip, setuptools and wheel go.
RUN python -m pip uninstall --yes --quiet pip setuptools wheel 2>/dev/null || true; \
    groupadd --system --gid 10001 gatehouse; \
    useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
        --shell /usr/sbin/nologin gatehouse

COPY --from=build /opt/gatehouse /opt/gatehouse
COPY --chmod=0444 deploy/docker/healthcheck.py /usr/local/lib/gatehouse/healthcheck.py
COPY --chmod=0555 deploy/docker/entrypoint.sh /usr/local/bin/gatehouse-entrypoint

# A read-only root filesystem works: bytecode is compiled at build time, and the only
# writable place is /tmp (an emptyDir / tmpfs), where the data folder lives.
ENV PATH=/opt/gatehouse/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    GATEHOUSE_SERVICE=${SERVICE} \
    GATEHOUSE_HOST=0.0.0.0 \
    GATEHOUSE_DATA_DIR=/tmp/gatehouse \
    GATEHOUSE_LOG_JSON=true
USER 10001:10001
WORKDIR /tmp
EXPOSE 8000 8001 8002 8003 9000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "/usr/local/lib/gatehouse/healthcheck.py"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/gatehouse-entrypoint"]
CMD []
