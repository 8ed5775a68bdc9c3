# plantgate gateway and simulators. Build: docker build -t plantgate .
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY bin ./bin
COPY src ./src
COPY simulators ./simulators
COPY config ./config
ENV NODE_ENV=production
ENTRYPOINT ["node", "bin/plantgate.js"]
CMD ["run", "--config", "config/docker.yaml"]
