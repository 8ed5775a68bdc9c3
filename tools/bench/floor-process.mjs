// The MQTT libraries alone, for the benchmark's floor scenario (tools/bench/floor.ts): a process
// that takes QoS 1 messages with the library plantgate builds on, acknowledges each and keeps
// nothing, so its CPU per message is what that library costs before plantgate does any work.
// Plain JavaScript run without tsx: nothing of plantgate's, not even its loader, is in the figure.
//
//   node floor-process.mjs aedes <port>          the broker of plantgate's embedded path
//   node floor-process.mjs mqttjs <url> <filter> the client of plantgate's external-broker path
//   node floor-process.mjs mqtt-packet <port>    the packet parser both use, on a bare socket: what
//                                                 is left of aedes without its broker (a fast path's
//                                                 floor)
//
// Prints `ready` once it takes messages, then `count <n>` (messages taken) every 100 ms.
import { createServer } from 'node:net';
import { Aedes } from 'aedes';
import mqtt from 'mqtt';
import mqttPacket from 'mqtt-packet';

const [mode, where, filter] = process.argv.slice(2);
let count = 0;
let shown = -1;
const show = () => {
  if (count !== shown) process.stdout.write(`count ${(shown = count)}\n`);
};
setInterval(show, 100);

if (mode === 'aedes') {
  // the options plantgate's embedded broker gives aedes (src/sources/mqtt/embedded-broker.ts)
  const broker = await Aedes.createBroker({ maxClientsIdLength: 128, drainTimeout: 30_000 });
  // taking the message here is where plantgate ingests it; aedes writes PUBACK after the callback
  broker.authorizePublish = (_client, _packet, cb) => {
    count++;
    cb(null);
  };
  const server = createServer((socket) => broker.handle(socket));
  server.listen(Number(where), '127.0.0.1', () => process.stdout.write('ready\n'));
} else if (mode === 'mqtt-packet') {
  // CONNACK, PUBACK and PINGRESP written as aedes writes them (writeToStream), nothing else kept
  const server = createServer((socket) => {
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on('packet', (p) => {
      if (p.cmd === 'connect') mqttPacket.writeToStream({ cmd: 'connack', returnCode: 0, sessionPresent: false }, socket);
      else if (p.cmd === 'publish') {
        count++;
        if (p.qos === 1) mqttPacket.writeToStream({ cmd: 'puback', messageId: p.messageId }, socket);
      } else if (p.cmd === 'pingreq') mqttPacket.writeToStream({ cmd: 'pingresp' }, socket);
      else if (p.cmd === 'disconnect') socket.end();
    });
    parser.on('error', () => socket.destroy());
    socket.on('data', (b) => parser.parse(b));
    socket.on('error', () => undefined);
  });
  server.listen(Number(where), '127.0.0.1', () => process.stdout.write('ready\n'));
} else if (mode === 'mqttjs') {
  const client = mqtt.connect(where, { clientId: `plantgate-floor-${process.pid}`, clean: true, protocolVersion: 4, reconnectPeriod: 0 });
  client.on('message', () => count++);
  client.on('error', (err) => {
    process.stderr.write(`mqtt.js: ${err.message}\n`);
    process.exit(1);
  });
  client.on('connect', () => client.subscribe(filter, { qos: 1 }, (err) => (err ? process.exit(1) : process.stdout.write('ready\n'))));
} else {
  process.stderr.write(`usage: floor-process.mjs aedes <port> | mqtt-packet <port> | mqttjs <url> <filter>\n`);
  process.exit(2);
}
process.on('SIGTERM', () => {
  show();
  process.exit(0);
});
