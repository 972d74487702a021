/**
 * The packets the gateway writes itself, as they go on the wire, and the fast way to write
 * them. An event is encoded once per replica (`2["event",<json>]`) and, for WebSocket
 * clients, framed once (the WebSocket message `4` + packet, unmasked). Each subscriber's copy
 * is then written straight to its TCP socket, skipping engine.io's and ws's per-packet work
 * (a packet object, its events, a send callback per write), and the socket is corked until the
 * end of the event loop's turn: what one turn delivers to a connection leaves in one writev.
 *
 * Order is kept: a packet goes the direct way only while engine.io has nothing queued for the
 * connection (its write buffer empty, its transport writable); otherwise it queues behind what
 * engine.io holds. Every write, direct or not, ends in the same TCP socket in call order.
 */
import type { Socket as NetSocket } from "node:net";
import * as ws from "ws";
import type { RoomcastSocket } from "./types.js";

const EVENT_HEAD = '2["event",';

/** Socket.IO EVENT packet for namespace "/": `2["event",<json>]`. */
export function eventPacket(json: string): string {
  return `${EVENT_HEAD}${json}]`;
}

/** The event JSON inside an event packet. */
export function eventJsonOf(packet: string): string {
  return packet.slice(EVENT_HEAD.length, -1);
}

/** Socket.IO EVENT packet `2["presence",<json>]`: a join or leave. */
export function presencePacket(json: string): string {
  return `2["presence",${json}]`;
}

const WELCOME_HEAD = '2["welcome",{"sessionId":';

/** The `welcome` packet: its fixed tail (node and limits) is encoded once per replica. */
export function welcomePacket(sessionId: string, serverTime: number, tail: string): string {
  return `${WELCOME_HEAD}${JSON.stringify(sessionId)},"serverTime":${serverTime}${tail}`;
}

export function welcomeTail(node: string, limits: object): string {
  return `,"node":${JSON.stringify(node)},"limits":${JSON.stringify(limits)}}]`;
}

type FrameFn = (data: Buffer, options: object) => Buffer[];
// Imported by name: the ESM build of ws has no WebSocket.Sender.
const frameParts = (ws as unknown as { Sender?: { frame?: FrameFn } }).Sender?.frame;
/** Whether messages are framed here (test/unit/delivery-frame.test.ts keeps it true across ws upgrades). */
export const FRAMES_ONCE = frameParts !== undefined;
const TEXT = { readOnly: false, mask: false, rsv1: false, opcode: 1, fin: true };

/** The WebSocket message that carries a packet (Engine.IO `4` + packet), framed, in one buffer. */
export function framed(packet: string): Buffer | undefined {
  if (!frameParts) return undefined;
  const parts = frameParts(Buffer.from("4" + packet), TEXT);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/** What engine.io holds for a connection, as far as writing past it goes. */
interface EngineConnection {
  writeBuffer: unknown[];
  transport: { name: string; writable: boolean; socket?: { readyState: number; _socket?: NetSocket } };
  write(packet: string): void;
}

/** The TCP socket a packet may go to directly now, or undefined (long-polling, engine.io has packets queued, closing). */
function directSocket(conn: EngineConnection): NetSocket | undefined {
  const transport = conn.transport;
  if (transport.name !== "websocket" || !transport.writable || conn.writeBuffer.length > 0) return undefined;
  const socket = transport.socket;
  // 1: OPEN (a closing WebSocket must not get data after its close frame).
  if (socket?.readyState !== 1) return undefined;
  const tcp = socket._socket;
  return tcp && tcp.writable ? tcp : undefined;
}

/** Sockets corked in this turn of the event loop, uncorked together at its end. */
const corked: NetSocket[] = [];
let uncorkScheduled = false;

function uncorkAll(): void {
  uncorkScheduled = false;
  for (const socket of corked.splice(0)) socket.uncork();
}

/**
 * Writes a packet to a connection: directly and corked when it can (with `frame`, the message
 * already framed, as for a broadcast), else through engine.io.
 */
export function writePacket(socket: RoomcastSocket, packet: string, frame?: Buffer): void {
  const conn = socket.conn as unknown as EngineConnection;
  const tcp = directSocket(conn);
  const message = tcp && (frame ?? framed(packet));
  if (!tcp || !message) {
    conn.write(packet);
    return;
  }
  if (!tcp.writableCorked) {
    tcp.cork();
    corked.push(tcp);
    if (!uncorkScheduled) {
      uncorkScheduled = true;
      setImmediate(uncorkAll);
    }
  }
  tcp.write(message);
}
