# Production image of the carbon-pipeline code location (webserver, daemon or code server by command).
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/venv
COPY constraints.txt pyproject.toml README.md ./
COPY carbon_pipeline ./carbon_pipeline
RUN /opt/venv/bin/pip install --no-cache-dir --constraint constraints.txt .

FROM python:3.11-slim
RUN useradd --create-home --uid 1001 dagster
COPY --from=build /opt/venv /opt/venv
COPY workspace.yaml /opt/dagster/app/
ENV PATH=/opt/venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster/home \
    DAGSTER_DEPLOYMENT=prod
RUN mkdir -p /opt/dagster/home && chown dagster:dagster /opt/dagster/home
WORKDIR /opt/dagster/app
USER dagster
EXPOSE 4000
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s \
    CMD dagster api grpc-health-check -p 4000 || exit 1
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "carbon_pipeline.definitions"]
