# One image for every part of Sluice: the chart runs `sluice operator` and `sluice gateway` from
# it, and the operator runs pipeline pods (`sluice runtime`) from it by default.
# Build: `make image` (docker build -t sluice:dev .).
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/sluice
COPY pyproject.toml constraints.txt README.md ./
COPY operator ./operator
# A regular (not editable) install, pinned by the same constraints as development.
RUN /opt/sluice/bin/pip install --constraint constraints.txt .

FROM python:${PYTHON_VERSION}-slim
ENV PATH=/opt/sluice/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=build /opt/sluice /opt/sluice
# A numeric non-root user, so `runAsNonRoot` can verify it; the chart uses the same ids.
RUN groupadd --system --gid 10001 sluice \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin sluice
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["sluice"]
CMD ["--help"]
