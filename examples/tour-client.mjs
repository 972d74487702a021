// A minimal subscriber for the README tour: stock socket.io-client, no SDK.
// It subscribes to a channel, prints every event, and after any reconnect resubscribes
// with `since` so that it gets exactly what it missed.
//   node examples/tour-client.mjs http://localhost:3000 <token> user:dev
import { io } from "socket.io-client";

const [url = "http://localhost:3000", token = process.env.TOKEN, channel = "user:dev"] = process.argv.slice(2);
if (!token) {
  console.error("usage: node examples/tour-client.mjs <url> <token> [channel]");
  process.exit(2);
}

let position; // { offset, epoch } of the last event we have
const socket = io(url, { auth: { token }, transports: ["websocket"] });

socket.on("welcome", (w) => console.log(`connected to ${w.node} (session ${w.sessionId})`));
socket.on("connect", async () => {
  const request = position ? { channel, since: position } : { channel, history: 10 };
  const answer = await socket.emitWithAck("subscribe", request);
  if (!answer.ok) return console.error("subscribe refused:", answer.error);
  console.log(`subscribed to ${channel} at offset ${answer.offset} (epoch ${answer.epoch}), recovered: ${answer.recovered}, ${answer.events.length} event(s) from history`);
  for (const event of answer.events) print(event);
  position = { offset: answer.offset, epoch: answer.epoch };
});
socket.on("event", print);
socket.on("closing", (c) => console.log(`server is closing this connection: ${c.code} ${c.reason}`));
socket.on("disconnect", (reason) => console.log(`disconnected (${reason}); reconnecting...`));
socket.on("connect_error", (err) => console.log(`connect_error: ${err.message}`, err.data ?? ""));

function print(event) {
  console.log(`#${event.offset} ${event.type} ${JSON.stringify(event.data)}`);
  position = { offset: event.offset, epoch: event.epoch };
}
