# ActionBot image: `docker build -t actionbot .`, then see README "Docker".
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/actionbot
WORKDIR /src
# Pinned dependencies in their own layer: rebuilt only when the lock changes.
COPY requirements.lock ./
RUN /opt/actionbot/bin/pip install --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
COPY actionbot ./actionbot
RUN /opt/actionbot/bin/pip install --no-deps .

FROM python:${PYTHON_VERSION}-slim
RUN groupadd --system --gid 10001 actionbot \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin actionbot \
    && mkdir /data \
    && chown 10001:10001 /data
COPY --from=build /opt/actionbot /opt/actionbot
COPY actions.example.toml /opt/actionbot/share/actions.example.toml
ENV PATH=/opt/actionbot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ACTIONBOT_DB=/data/actionbot.db \
    ACTIONBOT_ACTIONS=/data/actions.toml \
    ACTIONBOT_HTTP_PORT=8080 \
    ACTIONBOT_HTTP_HOST=0.0.0.0
WORKDIR /data
VOLUME ["/data"]
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["actionbot", "healthcheck"]
ENTRYPOINT ["actionbot"]
CMD ["run"]
