// The stock baseline: what a team builds without roomcast. Socket.IO with
// @socket.io/redis-adapter on ioredis and nothing else: no auth, no history, no quotas, no
// metrics. Clients `subscribe` ({ channel }, ack) to join a room; POST /publish
// { channel, data } emits `event` with data to the room, across replicas through the adapter.
//   PORT=3001 REDIS_URL=redis://127.0.0.1:6379 node bench/baselines/stock-server.mjs
import { createServer } from "node:http";
import { createAdapter } from "@socket.io/redis-adapter";
import { Redis } from "ioredis";
import { Server } from "socket.io";

const pub = new Redis(process.env.REDIS_URL);
const sub = pub.duplicate();

const http = createServer((req, res) => {
  if (req.method === "POST" && req.url === "/publish") {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      const { channel, data } = JSON.parse(body);
      io.to(channel).emit("event", data);
      res.writeHead(202, { "content-type": "application/json" }).end("{}");
    });
    return;
  }
  res.writeHead(req.url === "/readyz" ? 200 : 404).end();
});
const io = new Server(http, { serveClient: false });
io.adapter(createAdapter(pub, sub));
io.on("connection", (socket) => {
  socket.on("subscribe", (request, ack) => {
    socket.join(request.channel);
    if (typeof ack === "function") ack({ ok: true });
  });
});
http.listen(Number(process.env.PORT), "127.0.0.1");
// A clean exit on SIGTERM, so that a profiled run (BENCH_CPU_PROF) writes its profile.
process.on("SIGTERM", () => process.exit(0));
