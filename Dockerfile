FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

RUN groupadd --system app \
    && useradd --system --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app

# The CJK font every PDF embeds (TrueType outlines: reportlab cannot embed CFF fonts); README "Chinese text".
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-wqy-zenhei \
    && rm -rf /var/lib/apt/lists/*

# Dependencies first, so a code change does not reinstall them.
COPY requirements.txt .
RUN pip install -r requirements.txt

# The code stays owned by root: the app user can read it but not change it.
COPY . .

# Settings refuse to load without a secret key when DEBUG is off. The throwaway key below exists
# only for this RUN step (it is not an ENV, so it is not in the image); the real key comes from
# the environment at run time. Settings create var/ on import; it is recreated empty and handed
# to the app user, as the one place it writes (beat's schedule, uploaded filing documents in var/media).
RUN DJANGO_SECRET_KEY=collectstatic-build-only-not-a-secret python manage.py collectstatic --noinput \
    && rm -rf /app/var \
    && mkdir -p /app/var/media \
    && chown app:app /app/var /app/var/media

USER app

EXPOSE 8000

CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000"]
