#!/usr/bin/env python3
"""A minimal execnet client written from docs/PROTOCOL.md alone ("Writing a client: popen").

It binds a ROUTER as its hub, starts the stock `execnet-worker` with the documented environment,
and runs the stock tasks on channels: echo (values of every kind, more than a window, so credit
flows both ways), info, exec, an unknown task, STATUS; then the exit handshake. What it saw is
written to --out as one value in execnet's serializer format (execnet.dumps), for the Swift test.

    doc_client.py --worker PATH --out FILE [--count N]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import execnet
import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peerproto import (BYE, CLOSE, CLOSE_ERROR, CREDIT, DATA, EXEC, FAREWELL, HELLO, PROTOCOL, STATUS,
                       TERMINATE, Channel, dumps, frames, loads, parse)

SAMPLES = [None, True, False, 0, -1, 2**31 - 1, -2**31, 2**70, 1.5, -0.0, float("inf"), 1 + 2j,
           "", "text é ✓", b"", b"\x00\xff", [], [1, [2, [3]]], (), (1, "a", b"b"), {}, {"k": [None, 1.0]},
           {1: "one", (2, 3): frozenset({4})}, {1, 2, 3}, frozenset({"x"})]


class Hub:
    def __init__(self, worker):
        self.context = zmq.Context()
        self.router = self.context.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.router.setsockopt(zmq.LINGER, 0)
        self.directory = tempfile.mkdtemp(prefix="doc-client-")
        endpoint = "ipc://%s/hub" % self.directory
        self.router.bind(endpoint)
        self.routing_id = b"py.%d.gw0" % os.getpid()
        environment = {k: v for k, v in os.environ.items() if not k.startswith("EXECNET_")}
        environment.update({
            "EXECNET_ENDPOINT": endpoint,
            "EXECNET_ROUTING_ID": self.routing_id.decode(),
            "EXECNET_GATEWAY_ID": "gw0",
            "EXECNET_PARENT_PID": str(os.getpid()),
        })
        self.process = subprocess.Popen([worker], env=environment, stdin=subprocess.DEVNULL, start_new_session=True)
        self.channels = {}

    def send(self, channel, kind, payload=b""):
        self.router.send_multipart([self.routing_id] + frames(channel, kind, payload))

    def receive(self, timeout=10.0):
        """The next message from the worker: (channel, type, payload)."""
        if not self.router.poll(int(timeout * 1000)):
            raise TimeoutError("nothing from the worker within %s s" % timeout)
        parts = self.router.recv_multipart()
        assert parts[0] == self.routing_id, parts[0]
        return parse(parts[1:])

    def open(self, cid, task, args=(), kwargs=None):
        self.channels[cid] = Channel(cid)
        self.send(cid, EXEC, dumps((task, list(args), kwargs or {})))
        return self.channels[cid]

    def handle(self, cid, kind, payload):
        """Applies CREDIT and close frames; returns the value of a DATA (granting credit), else None."""
        channel = self.channels[cid]
        if kind == CREDIT:
            channel.granted(*loads(payload))
        elif kind in (CLOSE, CLOSE_ERROR):
            channel.close_received = True
            channel.error = loads(payload) if kind == CLOSE_ERROR else None
            self.close(channel)  # answer the peer's close with ours, once
        elif kind == DATA:
            grant = channel.consumed(len(payload))
            if grant is not None and not channel.close_sent:
                self.send(cid, CREDIT, grant)
            return loads(payload)
        else:
            raise AssertionError("unexpected message type %d on channel %d" % (kind, cid))
        return None

    def close(self, channel):
        if not channel.close_sent:
            channel.close_sent = True
            self.send(channel.id, CLOSE)

    def items_until_close(self, channel):
        """Every item of a channel up to the worker's close."""
        items = []
        while not channel.close_received:
            cid, kind, payload = self.receive()
            value = self.handle(cid, kind, payload)
            if kind == DATA:
                items.append(value)
        return items


def main():
    options = argparse.ArgumentParser()
    options.add_argument("--worker", required=True)
    options.add_argument("--out", required=True)
    options.add_argument("--count", type=int, default=3000)
    options = options.parse_args()
    hub = Hub(options.worker)
    result = {"worker_pid": hub.process.pid}
    try:
        cid, kind, payload = hub.receive()
        assert (cid, kind) == (0, HELLO), (cid, kind)
        hello = loads(payload)
        assert hello["protocol"] == PROTOCOL, hello
        result["hello"] = hello

        # echo: more items than a window, sent within credit while the echoes are read.
        echo = hub.open(1, "echo")
        sent = SAMPLES + list(range(options.count))
        echoed = []
        next_item = 0
        while len(echoed) < len(sent):
            if next_item < len(sent):
                payload = dumps(sent[next_item])
                if echo.may_send(len(payload)):
                    echo.take(len(payload))
                    hub.send(1, DATA, payload)
                    next_item += 1
                    continue
            cid, kind, payload = hub.receive()
            value = hub.handle(cid, kind, payload)
            if kind == DATA:
                echoed.append(value)
        hub.close(echo)
        while not echo.close_received:
            hub.handle(*hub.receive())
        result["sent"] = sent
        result["echoed"] = echoed
        result["echo_error"] = echo.error

        info = hub.open(3, "info")
        result["info"] = hub.items_until_close(info)

        command = hub.open(5, "exec", [["/bin/sh", "-c", "echo out; echo err >&2; exit 3"]])
        result["exec"] = hub.items_until_close(command)
        result["exec_error"] = command.error

        unknown = hub.open(7, "no-such-task")
        hub.items_until_close(unknown)
        result["unknown_task_error"] = unknown.error

        hub.channels[9] = Channel(9)
        hub.send(9, STATUS)
        result["status"] = hub.items_until_close(hub.channels[9])

        hub.send(0, TERMINATE)
        cid, kind, payload = hub.receive()
        result["bye"] = (cid, kind) == (0, BYE)
        hub.send(0, FAREWELL)
        result["exit_code"] = hub.process.wait(timeout=10)
    finally:
        if hub.process.poll() is None:
            hub.process.kill()
            hub.process.wait()
        hub.router.close()
        hub.context.term()
        shutil.rmtree(hub.directory, ignore_errors=True)
    with open(options.out, "wb") as out:
        out.write(execnet.dumps(result))
    print("doc_client: %d items echoed, worker exited %s" % (len(result["echoed"]), result["exit_code"]))


if __name__ == "__main__":
    main()
