# syntax=docker/dockerfile:1
# roomcast: one image for `roomcast gateway` (the default) and `roomcast worker`.
#   docker build -t roomcast .
#   docker run -e REDIS_URL=redis://redis:6379 -e ROOMCAST_JWT_SECRET=... -p 3000:3000 roomcast
#   docker run -e REDIS_URL=redis://redis:6379 roomcast worker
ARG NODE_VERSION=20

# --- build: compile TypeScript, then keep only the production dependencies
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# --- runtime: the compiled CLI, production node_modules and the console's static files, as non-root
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./package.json
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --chown=node:node console ./console
# The image's own user (uid 1000): no root, and nothing it needs to write outside /tmp.
USER node
EXPOSE 3000
# Node is PID 1 and handles SIGTERM itself: gateways drain their clients (ROOMCAST_DRAIN_S),
# workers finish or requeue their jobs, then exit 0. It starts no child processes to reap.
STOPSIGNAL SIGTERM
# Liveness of the process (readiness, /readyz, is for the load balancer or Kubernetes).
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["gateway"]
