// roomcast/client quick start: subscribe and print every event of a channel, once each and
// in order, across reconnects and replica failures.
//   node examples/sdk-quickstart.mjs http://localhost:3000 $TOKEN user:dev [stop after n events]
import { createClient } from "roomcast/client";

const [url, token, channel, stopAfter] = process.argv.slice(2);
const client = createClient({ url, token });
client.on("closing", (c) => console.log(`closing: ${c.code} ${c.reason}, back in ${c.retryAfterMs} ms`));

const welcome = await client.connect();
console.log(`connected to ${welcome.node}`);
let seen = 0;
await client.subscribe(
  channel,
  (event) => {
    console.log(`#${event.offset} ${event.type} ${JSON.stringify(event.data)}`);
    if (++seen === Number(stopAfter)) client.close();
  },
  {
    history: 10,
    // History could not fill a gap: start over from the snapshot.
    onReset: ({ snapshot }) => console.log("reset; snapshot:", JSON.stringify(snapshot)),
  },
);
console.log(`subscribed to ${channel}`);
