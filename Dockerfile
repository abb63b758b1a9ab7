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

# The dependencies in a layer of their own, read from pyproject.toml: a change to the code does
# not install them again.
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['monitor']))" > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && useradd --create-home --uid 1000 colorquant \
    && mkdir -p /data && chown colorquant /data

# The code. compose runs the containers as the owner of ./data (COLORQUANT_UID), so nothing
# below is written at run time.
COPY README.md ./
COPY cli cli
COPY pipeline pipeline
COPY worker worker
RUN pip install --no-cache-dir --no-deps .

USER colorquant
CMD ["colorquant", "worker"]
