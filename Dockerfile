# PhantomFlow: one image for every process (`serve`, `api`, `worker`, `projections`, admin).
# No apt packages: the FFmpeg binary ships inside the imageio-ffmpeg wheel.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PHANTOMFLOW_DATA_DIR=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY adapters ./adapters
COPY workers ./workers
COPY projections ./projections
COPY api ./api
RUN pip install . \
    && python -c "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())"

# Non-root. /data/outputs and /data/scratch are created here, owned by the app user, so
# a named volume mounted at /data (compose.yaml's `data`) starts out with both,
# writable by it. Renders in progress go to /data/scratch (TMPDIR): on the same
# filesystem as the outputs, a finished render is renamed into place, not copied.
RUN useradd --create-home --uid 10001 --user-group phantomflow \
    && mkdir -p /data/outputs /data/scratch \
    && chown -R phantomflow:phantomflow /data
ENV TMPDIR=/data/scratch
USER phantomflow
WORKDIR /data

EXPOSE 8080
ENTRYPOINT ["phantomflow"]
# The embedded default; compose.yaml runs `api`, `worker` and `projections` instead.
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
