#!/usr/bin/env python3
"""A minimal execnet worker written from docs/PROTOCOL.md alone ("Writing a worker").

A gateway starts it with `worker=PATH` (PATH an executable that runs this script) and the
environment the doc lists. Tasks:

  echo   sends back every item until the client closes the channel
  add    args [x, y]: sends x + y, then closes
  fail   closes the channel with an error (CLOSE_ERROR)
  crash  the worker process exits at once with status 3 (a worker death)

It answers STATUS, runs the exit handshake (TERMINATE, BYE, FAREWELL) and, when started with
EXECNET_HEARTBEAT_MS (by a host agent), heartbeats the broker and exits when the broker is silent.
"""

import os
import platform
import socket
import sys
import time

import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peerproto import (BYE, CLOSE, CLOSE_ERROR, CREDIT, DATA, EXEC, FAREWELL, HEARTBEAT, HELLO, PROTOCOL,
                       STATUS, TERMINATE, UNKNOWN_PEER, Channel, dumps, frames, loads, parse)

TASKS = ["echo", "add", "fail", "crash"]


class Worker:
    def __init__(self):
        env = os.environ
        self.gateway = env.get("EXECNET_GATEWAY_ID", "gw")
        self.heartbeat = int(env.get("EXECNET_HEARTBEAT_MS", "0")) / 1000.0
        self.expiry_span = self.heartbeat * int(env.get("EXECNET_LIVENESS", "3"))
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.ROUTING_ID, env["EXECNET_ROUTING_ID"].encode())
        self.socket.setsockopt(zmq.LINGER, 1000)
        self.socket.connect(env["EXECNET_ENDPOINT"])
        self.channels = {}
        self.last_sent = time.monotonic()
        self.peer_expiry = time.monotonic() + self.expiry_span
        self.bye_deadline = None

    def send(self, channel, kind, payload=b""):
        self.socket.send_multipart(frames(channel, kind, payload))
        self.last_sent = time.monotonic()

    def hello(self):
        self.send(0, HELLO, dumps({
            "protocol": PROTOCOL, "pid": os.getpid(), "cwd": os.getcwd(), "hostname": socket.gethostname(),
            "executable": sys.executable, "platform": "linux-" + platform.machine(), "tasks": TASKS,
        }))

    def send_data(self, channel, value):
        payload = dumps(value)
        if channel.pending or not channel.may_send(len(payload)):
            channel.pending.append(payload)
            return
        channel.take(len(payload))
        self.send(channel.id, DATA, payload)

    def flush(self, channel):
        while channel.pending and channel.may_send(len(channel.pending[0])) and not channel.close_sent:
            payload = channel.pending.pop(0)
            channel.take(len(payload))
            self.send(channel.id, DATA, payload)

    def close(self, channel, error=None):
        """Sends this side's close, once; forgets the channel once both closes are seen."""
        if not channel.close_sent:
            channel.close_sent = True
            if error is None:
                self.send(channel.id, CLOSE)
            else:
                self.send(channel.id, CLOSE_ERROR, dumps(error))
        if channel.close_received:
            self.channels.pop(channel.id, None)

    def start(self, cid, payload):
        if cid <= 0 or cid % 2 == 0 or cid in self.channels:
            return  # not a new client channel id: dropped
        channel = Channel(cid)
        channel.task = None
        self.channels[cid] = channel
        try:
            name, args, kwargs = loads(payload)
        except Exception:
            return self.close(channel, "malformed EXEC payload")
        channel.task = name
        if name == "echo":
            return
        if name == "add":
            self.send_data(channel, args[0] + args[1])
            return self.close(channel) if not channel.pending else None
        if name == "fail":
            return self.close(channel, "ValueError: the doc worker was asked to fail")
        if name == "crash":
            os._exit(3)
        self.close(channel, "unknown task '%s'; this worker has: %s" % (name, ", ".join(TASKS)))

    def dispatch(self, cid, kind, payload):
        if kind == EXEC:
            return self.start(cid, payload)
        if kind == STATUS:
            if cid > 0 and cid % 2 == 1 and cid not in self.channels:
                channel = self.channels[cid] = Channel(cid)
                channel.task = None
                self.send_data(channel, {"numchannels": len(self.channels) - 1,
                                         "numexecuting": sum(1 for c in self.channels.values() if c.task),
                                         "execmodel": "python-doc-worker"})
                self.close(channel)
            return
        if kind == TERMINATE:
            if self.bye_deadline is None:
                self.send(0, BYE)
                self.bye_deadline = time.monotonic() + 2.0
            return
        if kind == FAREWELL:
            self.exit(0)
        if kind == HEARTBEAT:
            return
        if kind == UNKNOWN_PEER:
            self.exit(1)
        channel = self.channels.get(cid)
        if channel is None:
            return  # a frame for a channel that is not open here: dropped
        if kind == DATA:
            if channel.close_sent:
                return
            value = loads(payload)
            grant = channel.consumed(len(payload))
            if grant is not None:
                self.send(cid, CREDIT, grant)
            if channel.task == "echo":
                self.send_data(channel, value)
        elif kind == CREDIT:
            messages, bytes_ = loads(payload)
            channel.granted(messages, bytes_)
            self.flush(channel)
            if channel.task == "add" and not channel.pending:
                self.close(channel)
        elif kind in (CLOSE, CLOSE_ERROR):
            channel.close_received = True
            if kind == CLOSE_ERROR:
                channel.error = loads(payload)
            self.close(channel)

    def exit(self, code):
        self.socket.close(linger=1000)
        self.context.term()
        os._exit(code)

    def run(self):
        self.hello()
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        while True:
            timeout = 100 if (self.heartbeat or self.bye_deadline) else None
            if poller.poll(timeout):
                while True:
                    try:
                        parts = self.socket.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self.peer_expiry = time.monotonic() + self.expiry_span
                    try:
                        cid, kind, payload = parse(parts)
                    except ValueError:
                        continue
                    self.dispatch(cid, kind, payload)
            now = time.monotonic()
            if self.bye_deadline is not None and now >= self.bye_deadline:
                self.exit(0)
            if self.heartbeat:
                if now >= self.peer_expiry:
                    self.exit(1)
                if now >= self.last_sent + self.heartbeat:
                    self.send(0, HEARTBEAT)


if __name__ == "__main__":
    Worker().run()
