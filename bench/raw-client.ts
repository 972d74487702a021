/**
 * A cheap load-generator client: a raw WebSocket speaking the Engine.IO v4 / Socket.IO v5
 * framing itself (open, CONNECT with the token, an optional subscribe with ack, pings),
 * counting `event` deliveries without parsing them.
 */
import { WebSocket } from "ws";

export function rawClient(
  url: string,
  token: string,
  channel: string | undefined,
  onEvent: () => void,
): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace("http", "ws")}/socket.io/?EIO=4&transport=websocket`);
    ws.on("error", reject);
    ws.on("message", (raw) => {
      const text = raw.toString();
      if (text.startsWith("0")) ws.send(`40${JSON.stringify({ token })}`);
      else if (text.startsWith("40")) {
        if (channel) ws.send(`421${JSON.stringify(["subscribe", { channel }])}`);
        else resolve(ws);
      } else if (text.startsWith("431")) resolve(ws);
      else if (text.startsWith('42["event"')) onEvent();
      else if (text === "2") ws.send("3");
    });
  });
}
