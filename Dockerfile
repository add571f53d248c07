# The media worker as a container. Build: docker build -t media-worker .
# Run (see docs/deployment.md): docker run --env-file media-worker.env --stop-timeout 45 media-worker
FROM python:3.11-slim-bookworm

# Debian's ffmpeg is built with NVENC/NVDEC; they load the NVIDIA driver libraries that the
# NVIDIA Container Toolkit mounts at run time, and the worker proves them with a test encode.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# On NVIDIA hosts (docker run --gpus all) the toolkit mounts only the driver libraries for these
# capabilities; "video" brings libnvidia-encode and libnvcuvid, without which NVENC is missing.
# Ignored on hosts without an NVIDIA GPU.
ENV NVIDIA_DRIVER_CAPABILITIES=compute,video,utility

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin worker

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
# The code stays owned by root, so the worker cannot modify itself.
COPY . .

# Writable places for the non-root user: the embedded database and local storage (only used
# when DATABASE_URL / SUPABASE_URL are unset) and the per-job work directories.
ENV WORKER_DATA_DIR=/data \
    WORKER_TEMP_DIR=/data/tmp
RUN mkdir -p /data/tmp && chown -R worker:worker /data

USER worker
# The first SIGTERM finishes or releases running jobs within WORKER_SHUTDOWN_TIMEOUT_SECONDS;
# give `docker stop` more than that (--stop-timeout 45 for the default 30 s).
STOPSIGNAL SIGTERM
CMD ["python", "worker.py"]
