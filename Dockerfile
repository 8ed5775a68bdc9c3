# plantgate gateway and simulators. Build: docker build -t plantgate .
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY bin ./bin
COPY src ./src
COPY simulators ./simulators
COPY config ./config
COPY seeds ./seeds
# the buffer, dead letters and PKI live under data/ (a volume in docker-compose.yml); not as root
RUN mkdir -p /app/data && chown -R node:node /app/data
USER node
ENV NODE_ENV=production
# --max-semi-space-size=32 as in bin/plantgate.js's shebang (the ENTRYPOINT bypasses it)
ENTRYPOINT ["node", "--max-semi-space-size=32", "bin/plantgate.js"]
CMD ["run", "--config", "config/docker.yaml"]
# /healthz answers while the process serves; /readyz is for orchestrators that route traffic
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:8080/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
