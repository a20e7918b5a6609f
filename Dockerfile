# gridmap: the HTTP service in a container (API + maps; PostGIS runs beside it, see compose.yaml).
#
# UNTESTED: no container tool exists on the machines gridmap is developed and tested
# on; this file is written from the steps tests/test_wheel.py runs (build the wheel,
# which carries the map assets, install it into a fresh environment, serve).
#
#   docker build -t gridmap .
#   docker run -p 8000:8000 -e GRIDMAP_DATABASE_URL=postgresql://… gridmap

# -- 1. map assets from the npm registry (versions pinned by package-lock.json) ----------
FROM node:20-bookworm-slim AS assets
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# -- 2. the wheel: the build copies the needed asset files into the package --------------
FROM python:3.11-slim-bookworm AS wheel
WORKDIR /src
COPY pyproject.toml setup.py README.md package.json ./
COPY gridmap ./gridmap
COPY layers ./layers
COPY api ./api
COPY --from=assets /src/node_modules ./node_modules
RUN python -m pip wheel --no-deps -w /dist .

# -- 3. the service ---------------------------------------------------------------------
FROM python:3.11-slim-bookworm
# The CJK font of the PDF reports (GRIDMAP_PDF_FONT names another one).
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*
COPY --from=wheel /dist /dist
# Extras: the PostGIS store, patrol planning, hot-spot statistics, PDF reports, OSM import.
# Leave out [batch] (dask) unless gridmap batch runs in this image.
RUN WHEEL="$(ls /dist/gridmap-*.whl)" \
    && python -m pip install --no-cache-dir "${WHEEL}[postgis,patrol,analytics,pdf,osm]" \
    && rm -rf /dist
RUN useradd --create-home --uid 10001 gridmap
USER gridmap
WORKDIR /home/gridmap
ENV GRIDMAP_LOG_FORMAT=json \
    GRIDMAP_MEDIA_DIR=/home/gridmap/media \
    GRIDMAP_ENVIRONMENT=production
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"
# Behind a reverse proxy: it sets X-Forwarded-*; add --root-path /prefix when mounted under one.
CMD ["gridmap", "serve", "--host", "0.0.0.0", "--port", "8000", "--forwarded-allow-ips", "*"]
