# syntax=docker/dockerfile:1
#
# One image for every Python role of recsys (candidate, ranker, gateway, trainer worker,
# beat, ui). docker-compose.yml picks the role with `command:`.
#
#   docker build -t recsys .
#   docker run --rm recsys recsys --help
#
# No dataset is baked in: mount one read-only at /data (RECSYS_DATA_DIR=/data).
#
# EXTRAS are the optional extras installed: `dask` (recsys train --engine dask, and the same
# image runs `dask scheduler` / `dask worker` for that cluster) and `s3` (artifacts on
# s3://). `--build-arg EXTRAS=` gives the smallest image without them.

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------
# builder: install the package and all its dependencies into /opt/venv
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ARG EXTRAS=dask,s3
# hnswlib (the ANN index) ships no wheels: pip compiles it, so the builder needs a C++ compiler.
# The runtime image only needs libstdc++, which the slim image already has.
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Dependencies first, against empty package stubs, so that editing the source does not
# reinstall numpy/lightgbm/streamlit & co. on every build.
COPY pyproject.toml README.md constraints.txt ./
RUN mkdir -p shared services ui \
    && touch shared/__init__.py services/__init__.py ui/__init__.py \
    && pip install -c constraints.txt ".${EXTRAS:+[$EXTRAS]}" \
    && pip uninstall -y recsys \
    && rm -rf shared services ui build ./*.egg-info

# Then the project itself.
COPY shared ./shared
COPY services ./services
COPY ui ./ui
RUN pip install --no-deps . \
    && rm -rf build ./*.egg-info

# ---------------------------------------------------------------------------
# runtime: slim Python + libgomp (LightGBM's OpenMP runtime), non-root user
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app \
       --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    RECSYS_DATA_DIR=/data \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false

WORKDIR /app

# `streamlit run ui/app.py` needs the script as a file under the working directory; the
# `ui` package it imports is the installed one in /opt/venv.
COPY --chown=app:app ui ./ui

# /app is writable by `app`: the relative work dir (var/) and celery beat's schedule file.
RUN mkdir -p /app/var /data \
    && chown app:app /app /app/var

# Numeric, so that runtimes enforcing runAsNonRoot can check it (10001 = app).
USER 10001:10001

EXPOSE 8000 8001 8002 8501

CMD ["recsys", "--help"]
