// The floor of framework cost: a raw `ws` WebSocket server relaying Redis pub/sub. Clients
// send { id, subscribe: [channels] } (answered { id, subscribed }); POST /publish
// { channel, data } publishes data's JSON on the Redis channel, and every replica writes that
// text to its local subscribers. No Socket.IO, no auth, no history, no limits.
//   PORT=3002 REDIS_URL=redis://127.0.0.1:6379 node bench/baselines/ws-relay-server.mjs
import { createServer } from "node:http";
import { Redis } from "ioredis";
import { WebSocketServer } from "ws";

const pub = new Redis(process.env.REDIS_URL);
const sub = pub.duplicate();
/** channel -> local sockets */
const rooms = new Map();

sub.on("message", (channel, text) => {
  for (const ws of rooms.get(channel) ?? []) ws.send(text);
});

const http = createServer((req, res) => {
  if (req.method === "POST" && req.url === "/publish") {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      const { channel, data } = JSON.parse(body);
      void pub
        .publish(channel, JSON.stringify(data))
        .then(() => res.writeHead(202, { "content-type": "application/json" }).end("{}"));
    });
    return;
  }
  res.writeHead(req.url === "/readyz" ? 200 : 404).end();
});
const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
wss.on("connection", (ws) => {
  const mine = new Set();
  ws.on("message", async (raw) => {
    const { id, subscribe } = JSON.parse(raw.toString());
    for (const channel of subscribe ?? []) {
      let room = rooms.get(channel);
      if (!room) {
        rooms.set(channel, (room = new Set()));
        await sub.subscribe(channel);
      }
      room.add(ws);
      mine.add(channel);
    }
    ws.send(JSON.stringify({ id, subscribed: mine.size }));
  });
  ws.on("close", () => {
    for (const channel of mine) {
      const room = rooms.get(channel);
      room?.delete(ws);
      if (room?.size === 0) {
        rooms.delete(channel);
        void sub.unsubscribe(channel);
      }
    }
  });
});
http.listen(Number(process.env.PORT), "127.0.0.1");
