// A minimal subscriber for the README tour: stock socket.io-client with its default options,
// no SDK. It subscribes to a channel and prints every event. The one line that makes it lose
// nothing: on every (re)connect it subscribes with `since`, the last offset and epoch it has,
// and gets exactly what it missed. When a replica moves it away (a rolling restart, a lost
// Redis link, a slow connection: `closing`, then `transport close`), socket.io-client
// reconnects by itself, through the load balancer, to another replica.
//   node examples/tour-client.mjs http://localhost:3000 <token> user:dev
import { io } from "socket.io-client";

const [url = "http://localhost:3000", token = process.env.TOKEN, channel = "user:dev"] = process.argv.slice(2);
if (!token) {
  console.error("usage: node examples/tour-client.mjs <url> <token> [channel]");
  process.exit(2);
}

let position; // { offset, epoch } of the last event we have
const socket = io(url, { auth: { token } });

socket.on("welcome", (w) => console.log(`connected to ${w.node} (session ${w.sessionId})`));
socket.on("connect", () => {
  const request = position ? { channel, since: position, history: 10 } : { channel, history: 10 };
  // The answer in the ack callback, not after an await: it runs before any event that came
  // in the same read, so the answer's events come first.
  socket.emit("subscribe", request, (answer) => {
    if (!answer.ok) return console.error("subscribe refused:", answer.error);
    console.log(
      `subscribed to ${channel} at offset ${answer.offset} (epoch ${answer.epoch}), recovered: ${answer.recovered}, ${answer.events.length} event(s) from history`,
    );
    if (!answer.recovered && position) position = undefined; // history lost: start over from what it holds
    for (const event of answer.events) print(event);
    if (!answer.events.length) position = { offset: answer.offset, epoch: answer.epoch };
  });
});
socket.on("event", print);
socket.on("closing", (c) => console.log(`server is closing this connection: ${c.code} ${c.reason}`));
socket.on("disconnect", (reason) => {
  // Only a kick or an expired token end the connection for good ("io server disconnect").
  if (reason === "io server disconnect") {
    console.log("disconnected by the server for good (kicked, or the token expired)");
    process.exit(1);
  }
  console.log(`disconnected (${reason}); reconnecting...`);
});
socket.on("connect_error", (err) => console.log(`connect_error: ${err.message}`, err.data ?? ""));

function print(event) {
  if (position && event.epoch === position.epoch && event.offset <= position.offset) return; // already have it
  console.log(`#${event.offset} ${event.type} ${JSON.stringify(event.data)}`);
  position = { offset: event.offset, epoch: event.epoch };
}
