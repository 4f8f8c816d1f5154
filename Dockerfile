# Production image of the carbon-pipeline code location (webserver, daemon or code server by command).
# Build stage: the package and its runtime dependencies, pinned by constraints.txt, in a virtualenv.
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/venv
COPY constraints.txt pyproject.toml README.md ./
COPY carbon_pipeline ./carbon_pipeline
RUN /opt/venv/bin/pip install --no-cache-dir --constraint constraints.txt .

# Runtime stage: the virtualenv, the workspace and the production instance file; no build context, no pip cache.
FROM python:3.11-slim
RUN useradd --create-home --uid 1001 dagster
COPY --from=build /opt/venv /opt/venv
COPY workspace.yaml /opt/dagster/app/
# Runs, event logs and schedules in PostgreSQL; the DAGSTER_PG_* connection settings come from the environment.
COPY deploy/dagster.yaml /opt/dagster/home/dagster.yaml
ENV PATH=/opt/venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster/home \
    DAGSTER_DEPLOYMENT=prod \
    PYTHONUNBUFFERED=1
# The instance file stays root's (read-only to the service); Dagster writes its local artifacts beside it.
RUN chown dagster:dagster /opt/dagster/home
WORKDIR /opt/dagster/app
USER dagster
EXPOSE 4000
# Healthy only while the code server serves its definitions: a code server whose code failed to load (a
# missing production setting) keeps running, and `dagster api grpc-health-check` would pass it. For the
# code server (the default command); a webserver or daemon container sets its own check.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s \
    CMD carbon-pipeline healthcheck -p 4000 || exit 1
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "carbon_pipeline.definitions"]
