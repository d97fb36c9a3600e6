# syntax=docker/dockerfile:1
# Latchkey: build on Node 24 LTS, run as a non-root user with only production dependencies.

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would build before the sources are here; argon2 ships prebuilt binaries.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:24-bookworm-slim
# Metrics listen on every interface of the container, for a Prometheus on its network; do not
# publish that port.
ENV NODE_ENV=production \
    PORT=3000 \
    METRICS_HOST=0.0.0.0 \
    KEYS_DIR=/app/keys
WORKDIR /app
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
COPY package.json ./
COPY config ./config
COPY views ./views
# The only writable place: private keys, 0700 and owned by the unprivileged user. Mount a volume here.
RUN install -d -o node -g node -m 0700 /app/keys
VOLUME ["/app/keys"]
USER node
EXPOSE 3000 9464
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/cli.js", "serve"]
