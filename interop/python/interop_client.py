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
done = threading.Event()
lost = threading.Event()
lock = threading.Lock()


def say(*parts):
    print(*parts, flush=True)


def deliver(event):
    # Called in order on the client's receiving thread: answers and live events alike.
    with lock:
        if event["offset"] <= position["offset"]:
            return  # already have it
        position["offset"] = event["offset"]
        position["epoch"] = event["epoch"]
        received.add(event["offset"])
        say("GOT", event["offset"], event["id"])
        if len(received) >= expected:
            done.set()


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
            position["offset"] = max(position["offset"], answer["offset"])
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
