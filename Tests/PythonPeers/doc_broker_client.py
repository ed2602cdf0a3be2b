#!/usr/bin/env python3
"""A minimal execnet broker client written from docs/PROTOCOL.md alone ("Writing a client: broker").

It registers with a running execnet-broker (no CURVE), asks for two workers on its host agents,
runs echo and exec on the first, kills the second (KILL, then PEER_LOST), ends the first with the
exit handshake (then PEER_LOST after its normal exit), reads the broker's status and leaves. What it
saw is written to --out as one value in execnet's serializer format (execnet.dumps).

    doc_broker_client.py --broker ENDPOINT --worker PATH --out FILE [--count N]
"""

import argparse
import os
import socket
import sys
import time

import execnet
import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peerproto import (BROKER_STATUS, BYE, CLIENT_HELLO, CLOSE, CLOSE_ERROR, CREDIT, DATA, EXEC, FAREWELL,
                       HEARTBEAT, HELLO, KILL, PEER_LOST, PROTOCOL, SPAWN, SPAWN_FAILED, SPAWNED, TERMINATE,
                       UNKNOWN_PEER, WELCOME, Channel, dumps, frames, loads, parse)


class BrokerClient:
    def __init__(self, endpoint):
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.ROUTING_ID, b"pyclient.%d" % os.getpid())
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)
        self.interval = 1.0
        self.last_sent = time.monotonic()
        self.channels = {}     # (address, channel id) -> Channel
        self.inbox = []        # messages read while waiting for something else

    def send(self, address, channel, kind, payload=b""):
        self.socket.send_multipart([address] + frames(channel, kind, payload))
        self.last_sent = time.monotonic()

    def receive(self, timeout=10.0):
        """The next message other than a HEARTBEAT: (address, channel, type, payload)."""
        if self.inbox:
            return self.inbox.pop(0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # Heartbeat when nothing else was sent for an interval (the broker drops silent clients).
            if time.monotonic() >= self.last_sent + self.interval:
                self.send(b"", 0, HEARTBEAT)
            if not self.socket.poll(int(min(self.interval / 2, 0.05) * 1000)):
                continue
            parts = self.socket.recv_multipart()
            cid, kind, payload = parse(parts[1:])
            if kind == HEARTBEAT:
                continue
            if kind == UNKNOWN_PEER:
                raise AssertionError("the broker does not know this client")
            return parts[0], cid, kind, payload
        raise TimeoutError("nothing from the broker within %s s" % timeout)

    def expect(self, address, kind, timeout=10.0):
        """The payload of the next message of `kind` about `address`; others are kept for later."""
        kept = []
        try:
            while True:
                message = self.receive(timeout)
                if message[0] == address and message[2] == kind:
                    return message[3]
                if message[2] == SPAWN_FAILED:
                    raise AssertionError("spawn failed: %r" % loads(message[3]))
                kept.append(message)
        finally:
            self.inbox = kept + self.inbox

    def register(self):
        self.send(b"", 0, CLIENT_HELLO, dumps({"protocol": PROTOCOL, "pid": os.getpid(),
                                                "hostname": socket.gethostname()}))
        welcome = loads(self.expect(b"", WELCOME))
        self.interval = welcome["heartbeat_ms"] / 1000.0
        return welcome

    def spawn(self, address, gateway, worker, env):
        self.send(b"", 0, SPAWN, dumps({"address": address, "gateway": gateway, "worker": worker, "env": env}))
        spawned = loads(self.expect(address, SPAWNED))
        hello = loads(self.expect(address, HELLO))
        return spawned, hello

    def handle(self, address, cid, kind, payload):
        channel = self.channels[(address, cid)]
        if kind == CREDIT:
            channel.granted(*loads(payload))
        elif kind in (CLOSE, CLOSE_ERROR):
            channel.close_received = True
            channel.error = loads(payload) if kind == CLOSE_ERROR else None
            self.close(address, channel)
        elif kind == DATA:
            grant = channel.consumed(len(payload))
            if grant is not None and not channel.close_sent:
                self.send(address, cid, CREDIT, grant)
            return loads(payload)
        else:
            raise AssertionError("unexpected message type %d on channel %d" % (kind, cid))
        return None

    def close(self, address, channel):
        if not channel.close_sent:
            channel.close_sent = True
            self.send(address, channel.id, CLOSE)

    def next_for(self, address):
        """The next channel message from the worker at `address` (control messages stay queued)."""
        kept = []
        try:
            while True:
                message = self.receive()
                if message[0] == address and message[2] in (DATA, CLOSE, CLOSE_ERROR, CREDIT):
                    return message
                if message[0] == address and message[2] == PEER_LOST:
                    raise AssertionError("worker lost: %r" % loads(message[3]))
                kept.append(message)
        finally:
            self.inbox = kept + self.inbox


def main():
    options = argparse.ArgumentParser()
    options.add_argument("--broker", required=True)
    options.add_argument("--worker", required=True)
    options.add_argument("--out", required=True)
    options.add_argument("--count", type=int, default=1500)
    options = options.parse_args()
    client = BrokerClient(options.broker)
    result = {}
    first = b"py.%d.gw0" % os.getpid()
    second = b"py.%d.gw1" % os.getpid()
    try:
        result["welcome"] = client.register()
        result["spawned"], result["hello"] = client.spawn(first, "gw0", options.worker, {"DOC_CLIENT": "broker"})

        # echo through the broker, more than a window.
        echo = client.channels[(first, 1)] = Channel(1)
        client.send(first, 1, EXEC, dumps(("echo", [], {})))
        sent = list(range(options.count)) + ["done"]
        echoed, next_item = [], 0
        while len(echoed) < len(sent):
            if next_item < len(sent):
                payload = dumps(sent[next_item])
                if echo.may_send(len(payload)):
                    echo.take(len(payload))
                    client.send(first, 1, DATA, payload)
                    next_item += 1
                    continue
            value = client.handle(*client.next_for(first))
            if value is not None:
                echoed.append(value)
        client.close(first, echo)
        while not echo.close_received:
            client.handle(*client.next_for(first))
        result["sent"], result["echoed"] = sent, echoed

        # exec: the SPAWN's env reached the worker.
        command = client.channels[(first, 3)] = Channel(3)
        client.send(first, 3, EXEC, dumps(("exec", [["/bin/sh", "-c", "echo $DOC_CLIENT"]], {})))
        items = []
        while not command.close_received:
            value = client.handle(*client.next_for(first))
            if value is not None:
                items.append(value)
        result["exec"] = items

        # A second worker, killed: PEER_LOST about its address.
        result["spawned_second"], _ = client.spawn(second, "gw1", options.worker, {})
        client.send(second, 0, KILL, dumps({"signal": 9}))
        result["killed"] = loads(client.expect(second, PEER_LOST))

        # The exit handshake, then PEER_LOST after the normal exit.
        client.send(first, 0, TERMINATE)
        client.expect(first, BYE)
        client.send(first, 0, FAREWELL)
        result["exited"] = loads(client.expect(first, PEER_LOST))

        client.send(b"", 5, BROKER_STATUS)
        status = loads(client.expect(b"", BROKER_STATUS))
        result["status_workers"] = status["workers"]
    finally:
        # Leaving: there is no goodbye message; the client stops talking and closes its socket.
        client.socket.close()
        client.context.term()
    with open(options.out, "wb") as out:
        out.write(execnet.dumps(result))
    print("doc_broker_client: %d items echoed through the broker" % len(result["echoed"]))


if __name__ == "__main__":
    main()
