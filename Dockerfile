# The ktnchat server image: the package with the mongo extra, run as a non-root user.
# Configure it only through KTNCHAT_<OPTION> environment variables (see README.md), e.g.
#   docker run -p 9998:9998 -e KTNCHAT_STORAGE=mongodb://db:27017/ktnchat ktnchat
# Relative SQLite paths (KTNCHAT_STORAGE=sqlite:///chat.db) land in /data; mount a volume
# there to keep them.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed numeric uid/gid, so orchestrators can verify "not root" without /etc/passwd.
RUN groupadd --system --gid 10001 ktnchat \
    && useradd --system --uid 10001 --gid ktnchat --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin ktnchat \
    && mkdir -p /data \
    && chown ktnchat:ktnchat /data

# Only what the build needs (.dockerignore keeps everything else out of the context).
WORKDIR /build
COPY pyproject.toml README.md ./
COPY ktnchat ./ktnchat
RUN pip install --no-cache-dir '.[mongo,cluster,web,metrics]' \
    && rm -rf /build

WORKDIR /data
USER 10001:10001

# Inside a container the server must listen on every interface to be reachable.
# The web client (HTTP + WebSocket) listens on 8080 when KTNCHAT_WEB_PORT is set, as the
# compose files do.
ENV KTNCHAT_HOST=0.0.0.0 \
    KTNCHAT_PORT=9998
EXPOSE 9998 8080

# `ktnchat health` sends a help request to 127.0.0.1:$KTNCHAT_PORT and wants an info back.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["ktnchat", "health", "--timeout", "2"]

# Exec form: the server is PID 1 and gets SIGTERM from `docker stop` (it shuts down cleanly).
CMD ["ktnchat", "server"]
