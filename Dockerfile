# colorquant worker and Flower image. Build: docker compose build
FROM python:3.11-slim

# One BLAS/OpenMP thread per process, set before anything imports numpy: parallelism comes from
# worker processes (COLORQUANT_CONCURRENCY) and replicas (--scale worker=N), never from threads.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OMP_NUM_THREADS=1 \
    OPENBLAS_NUM_THREADS=1 \
    MKL_NUM_THREADS=1 \
    BLIS_NUM_THREADS=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY cli cli
COPY pipeline pipeline
COPY worker worker
RUN pip install --no-cache-dir ".[monitor]" \
    && useradd --create-home --uid 1000 colorquant \
    && mkdir -p /data && chown colorquant /data

USER colorquant
CMD ["colorquant", "worker"]
