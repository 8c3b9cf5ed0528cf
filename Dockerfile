# The c2m-sync image: the CLI with the operator API and console (`serve`) and the pipeline
# workers (`worker all`). docker-compose.yml runs both against Kafka and PostgreSQL.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY sync ./sync
RUN pip install .
# The sample building, for `c2m-sync ccb load examples/premise-landlord.yaml`.
COPY examples ./examples

# Never run as root; ./var is where the embedded (SQLite) defaults would write.
RUN useradd --create-home --uid 10001 c2m && mkdir -p /app/var && chown c2m /app/var
USER c2m

EXPOSE 8080
ENTRYPOINT ["c2m-sync"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
