# The image of Hutch's dedicated runtimes (the Docker driver's HUTCH_RUNTIME_IMAGE).
#   docker build -f deploy/runtime.Dockerfile -t hutch-runtime:latest .
# A runtime reads its agent from HUTCH_RUNTIME_CONFIG and keeps its memory files in /workspace.
FROM python:3.11-slim

# The browser the agent drives (docs/browser.md): Debian's Chromium; Hutch never downloads one.
RUN apt-get update && apt-get install -y --no-install-recommends chromium fonts-liberation \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 10001 hutch
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip install --no-cache-dir . && mkdir /workspace && chown hutch /workspace

USER hutch
ENV HUTCH_DATA_DIR=/home/hutch/data
EXPOSE 8000
VOLUME ["/workspace"]
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["python", "-m", "hutch.runtimes", "--port", "8000", "--host", "0.0.0.0", "--workspace", "/workspace"]
