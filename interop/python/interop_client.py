"""roomcast interop client in Python (python-socketio), driven by test/integration/interop.test.ts.

usage: interop_client.py <url A> <url B> <token> <channel> <history> <expected count>
"""
import sys
import threading

import socketio

url_a, url_b, token, channel, history, expected = sys.argv[1:7]
history, expected = int(history), int(expected)

position = {"offset": 0, "epoch": None}
received = set()
# python-engineio runs each message handler on a thread of its own, so events (and the
# subscribe answer) can be handled out of order: hold any that arrive ahead of a gap until
# the offsets before them are in, and hand them on in offset order.
pending = {}
done = threading.Event()
lost = threading.Event()
lock = threading.Lock()


def say(*parts):
    print(*parts, flush=True)


def drain():
    """Hands on the held events that follow the position. Called with the lock held."""
    while position["offset"] + 1 in pending:
        event = pending.pop(position["offset"] + 1)
        position["offset"] = event["offset"]
        position["epoch"] = event["epoch"]
        received.add(event["offset"])
        say("GOT", event["offset"], event["id"])
    if len(received) >= expected:
        done.set()


def deliver(event):
    with lock:
        if event["offset"] > position["offset"]:
            pending[event["offset"]] = event  # a repeat of a held one replaces it
        drain()


def connect(url, request, label):
    sio = socketio.Client(reconnection=False)
    answered = threading.Event()

    @sio.on("event")
    def on_event(event):
        if event["channel"] == channel:
            deliver(event)

    @sio.on("disconnect")
    def on_disconnect(*_):
        lost.set()

    def on_answer(answer):
        if not answer.get("ok"):
            say("ERROR", answer)
            sys.exit(2)
        with lock:
            if position["epoch"] is None:
                position["epoch"] = answer["epoch"]
        for event in answer["events"]:
            deliver(event)
        with lock:
            # Where the channel was when it answered: what lies before is not coming.
            position["offset"] = max(position["offset"], answer["offset"])
            for offset in [o for o in pending if o <= position["offset"]]:
                pending.pop(offset)
            drain()
        if label == "READY":
            say("READY", answer["offset"], answer["epoch"])
        else:
            say("RECOVERED", "true" if answer["recovered"] else "false", len(answer["events"]))
        answered.set()

    sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    sio.emit("subscribe", request, callback=on_answer)
    if not answered.wait(10):
        say("ERROR", "no answer to subscribe")
        sys.exit(2)
    return sio


sio = connect(url_a, {"channel": channel, "history": history}, "READY")
while not done.is_set() and not lost.is_set():
    lost.wait(0.05)
if not done.is_set():
    say("DISCONNECTED")
    sio.disconnect()
    with lock:
        since = {"offset": position["offset"], "epoch": position["epoch"]}
    sio = connect(url_b, {"channel": channel, "since": since}, "RECOVERED")
if not done.wait(30):
    say("ERROR", "timed out with", len(received), "events")
    sys.exit(3)
say("DONE")
sio.disconnect()
