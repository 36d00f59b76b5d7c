# Rampart's one image. The default command runs the API; `node dist/workers/main.js` runs a release
# worker; `node dist/examples/demo-service/server.js` runs the demo service. Build with BuildKit (the
# default builder since Docker Engine 23): `docker build -t rampart:0.1.0 .`, or `docker compose build`.
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

# ---- build: every dependency, compile to dist/, prebuild the workflow bundle ---------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
COPY examples ./examples
# tsc, then workers/build-bundle.ts writes dist/workflow-bundle.js: workers never run webpack at start.
RUN npm run build && test -f dist/workflow-bundle.js

# ---- runtime: production dependencies, the compiled code, a non-root user ------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    RAMPART_API_HOST=0.0.0.0 \
    RAMPART_API_PORT=8080 \
    RAMPART_DATA_DIR=/var/lib/rampart \
    RAMPART_INSTALL_TEMPORAL=false
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist

# Health of every role, chosen by RAMPART_ROLE: api (GET /readyz: the process answers and Temporal does),
# worker (Temporal has seen a poller of this container on the task queue in the last two minutes: the
# SDK's default identity is pid@hostname), demo (GET /healthz). test/topology/two-workers.test.ts runs
# the worker branch of this very script against real worker processes.
COPY <<'EOF' /app/healthcheck.cjs
'use strict';
const os = require('node:os');

const role = process.env.RAMPART_ROLE || 'api';
const timer = setTimeout(() => fail(new Error('no answer within 4 s')), 4000);

function fail(error) {
  console.error(`${role} unhealthy: ${error.message}`);
  process.exit(1);
}

async function httpOk(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
}

async function polling() {
  const { Connection } = require('@temporalio/client');
  const queue = process.env.RAMPART_TASK_QUEUE || 'rampart-releases';
  const connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS || '127.0.0.1:7233' });
  try {
    const { pollers } = await connection.workflowService.describeTaskQueue({
      namespace: process.env.TEMPORAL_NAMESPACE || 'default',
      taskQueue: { name: queue },
      taskQueueType: 1, // TASK_QUEUE_TYPE_WORKFLOW
    });
    const host = `@${os.hostname()}`;
    const seconds = (p) => Number(p.lastAccessTime && p.lastAccessTime.seconds ? p.lastAccessTime.seconds.toString() : 0);
    const recent = (pollers || []).some((p) => String(p.identity || '').endsWith(host) && Date.now() / 1000 - seconds(p) < 120);
    if (!recent) throw new Error(`no poller${host} on task queue ${queue} in the last 2 minutes`);
  } finally {
    await connection.close();
  }
}

const checks = {
  api: () => httpOk(`http://127.0.0.1:${process.env.RAMPART_API_PORT || 8080}/readyz`),
  worker: polling,
  demo: () => httpOk(`http://127.0.0.1:${process.env.PORT || 8080}/healthz`),
};
if (!checks[role]) fail(new Error(`RAMPART_ROLE must be one of ${Object.keys(checks).join(', ')}`));
checks[role]().then(() => {
  clearTimeout(timer);
  process.exit(0);
}, fail);
EOF

RUN mkdir -p /var/lib/rampart && chown node:node /var/lib/rampart
USER node
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["node", "/app/healthcheck.cjs"]
ENV RAMPART_ROLE=api
CMD ["node", "dist/src/api/main.js"]
