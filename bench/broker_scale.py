#!/usr/bin/env python3
"""The broker-scale curve of issue 16: one execnet-broker under many simulated agents and gateways.

Run by bench/compare.sh (--figures broker-scale) with the bench venv's interpreter (pyzmq, and
execnet 2.1.2's serializer for payloads). It starts `execnet-broker serve` on TCP loopback (no
CURVE, no gateway quota) and, in this one process, raw ZeroMQ peers that speak the real protocol
of docs/PROTOCOL.md: one client (CLIENT_HELLO, SPAWN, EXEC, DATA), agents (AGENT_HELLO, SPAWNED for
every SPAWN they get) and workers (a DEALER per gateway with the address the client chose, HELLO,
CREDIT for what they received). Nothing is spawned for real. For each level of (agents, gateways)
it prints JSON lines (impl swift_broker, x = the count):

  curve_scale_broker_rss_mib            the broker's VmRSS at the level (x = agents + gateways)
  curve_scale_rss_per_agent_kib         its growth per agent added (x = agents)
  curve_scale_rss_per_gateway_kib       its growth per gateway added (x = gateways)
  curve_scale_heartbeat_cpu_us_per_peer_s  the broker's CPU (user + system, /proc/PID/stat) per peer
                                        per second while every peer only heartbeats
  curve_scale_routing_cpu_us_per_msg    its CPU per routed message (DATA client -> worker, CREDIT
                                        back), the idle (heartbeat) CPU of the same time taken off
  curve_scale_routing_msgs_per_s        routed messages per second (this simulator is the sender)

RLIMIT_NOFILE is raised to what the system allows (the broker inherits it) and the simulator's
ZeroMQ contexts get room for every socket (ZMQ_MAX_SOCKETS). Each simulated worker costs about two
file descriptors here (its TCP connection and its socket's mailbox), so past LOCAL_WORKERS the
workers live in helper processes (WORKERS_PER_HELPER each) that heartbeat them on their own; the
routing measurement uses workers of this process only. Levels that cannot be reached (file
descriptors, memory, time) end the run with what was measured and a note on stderr.
"""

import argparse
import json
import multiprocessing
import os
import resource
import socket
import struct
import subprocess
import sys
import tempfile
import time

import zmq
from execnet.gateway_base import dumps_internal, loads_internal

PROTOCOL = 2
HELLO, EXEC, DATA, CREDIT = 1, 2, 3, 6
HEARTBEAT, CLIENT_HELLO, WELCOME, SPAWN, SPAWNED, SPAWN_FAILED, PEER_LOST = 11, 12, 13, 14, 15, 16, 17
AGENT_HELLO = 19
ROUND = 500          # DATA per worker channel between two CREDITs (below the 1,024 window)
ROUTING_WORKERS = 50  # workers that take part in the routing measurement
LOCAL_WORKERS = 2000  # workers held by this process; the rest by helper processes
WORKERS_PER_HELPER = 6000

TICK = os.sysconf("SC_CLK_TCK")


def emit(figure, x, value):
    print(json.dumps({"impl": "swift_broker", "figure": figure, "x": x, "value": round(value, 3)}), flush=True)


def note(text):
    print(f"broker_scale: {text}", file=sys.stderr, flush=True)


def frames(channel, kind, payload=b""):
    return [struct.pack(">i", channel), bytes([kind]), payload]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def drain(sock):
    """Everything queued on a socket, without waiting."""
    messages = []
    while True:
        try:
            messages.append(sock.recv_multipart(zmq.NOBLOCK))
        except zmq.Again:
            return messages


def hello_payload():
    return dumps_internal({"protocol": PROTOCOL, "pid": 1, "cwd": "/", "hostname": "sim", "executable": "sim",
                           "platform": "linux", "tasks": []})


def helper_main(endpoint, heartbeat, connection):
    """A helper process: connects the workers whose addresses it is sent, says HELLO for each, and
    heartbeats them (draining what the broker sends) until told to stop."""
    context = zmq.Context(io_threads=1)
    context.set(zmq.MAX_SOCKETS, 60000)
    sockets = []
    last = time.monotonic()
    while True:
        if connection.poll(0.05):
            addresses = connection.recv()
            if addresses is None:
                break
            for address in addresses:
                sock = context.socket(zmq.DEALER)
                sock.setsockopt(zmq.ROUTING_ID, address)
                sock.setsockopt(zmq.LINGER, 0)
                sock.connect(endpoint)
                sock.send_multipart(frames(0, HELLO, hello_payload()))
                sockets.append(sock)
        if time.monotonic() - last >= heartbeat:
            last = time.monotonic()
            for sock in sockets:
                sock.send_multipart(frames(0, HEARTBEAT))
                drain(sock)
    context.destroy(linger=0)


class Simulation:
    def __init__(self, endpoint, heartbeat):
        self.context = zmq.Context(io_threads=1)
        self.context.set(zmq.MAX_SOCKETS, 60000)
        self.endpoint = endpoint
        self.heartbeat = heartbeat
        self.agents = []      # (socket, name)
        self.workers = []     # (socket, address) held by this process
        self.remote = 0       # workers held by helper processes
        self.helpers = []     # (process, connection, count)
        self.backlog = []     # (agent socket, SPAWN message) drained while heartbeating
        self.data_seen = {}   # worker socket -> DATA drained while heartbeating
        self.last_beat = time.monotonic()
        self.client = self.socket(f"c.sim.{os.getpid()}".encode())
        self.client.send_multipart([b""] + frames(0, CLIENT_HELLO, dumps_internal(
            {"protocol": PROTOCOL, "pid": os.getpid(), "hostname": socket.gethostname()})))
        self.expect(self.client, lambda parts: parts[2] == bytes([WELCOME]), "the client's WELCOME")

    def socket(self, identity):
        sock = self.context.socket(zmq.DEALER)
        sock.setsockopt(zmq.ROUTING_ID, identity)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
        sock.connect(self.endpoint)
        return sock

    def expect(self, sock, matches, what, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sock.poll(100):
                parts = sock.recv_multipart()
                if matches(parts):
                    return parts
            self.beat()
        raise RuntimeError(f"no {what} within {timeout} s")

    def beat(self, force=False):
        """A HEARTBEAT from every peer once per interval (the broker's own heartbeats are drained)."""
        now = time.monotonic()
        if not force and now - self.last_beat < self.heartbeat:
            return
        self.last_beat = now
        self.client.send_multipart([b""] + frames(0, HEARTBEAT))
        for sock, _ in self.agents:
            sock.send_multipart(frames(0, HEARTBEAT))
            # A SPAWN drained here is kept for add_gateways; the rest are the broker's heartbeats.
            self.backlog.extend((sock, parts) for parts in drain(sock) if parts[1] == bytes([SPAWN]))
        for sock, _ in self.workers:
            sock.send_multipart(frames(0, HEARTBEAT))
            # DATA drained here is counted for route(); the rest are the broker's heartbeats.
            seen = sum(1 for parts in drain(sock) if parts[1] == bytes([DATA]))
            if seen:
                self.data_seen[sock] = self.data_seen.get(sock, 0) + seen

    def add_agents(self, count):
        fresh = []
        for index in range(len(self.agents), count):
            name = f"sim{index}"
            sock = self.socket(f"a.{name}.{os.getpid()}".encode())
            sock.send_multipart(frames(0, AGENT_HELLO, dumps_internal(
                {"protocol": PROTOCOL, "name": name, "slots": 1_000_000, "hostname": name, "pid": os.getpid()})))
            fresh.append((sock, name))
        for sock, _ in fresh:
            self.expect(sock, lambda parts: parts[1] == bytes([WELCOME]), "an agent's WELCOME")
        self.agents.extend(fresh)

    def worker_count(self):
        return len(self.workers) + self.remote

    def connect_worker(self, address, pending):
        """A worker for `address`: here while there is room, else in a helper (sent in batches)."""
        if len(self.workers) < LOCAL_WORKERS:
            worker = self.socket(address)
            worker.send_multipart(frames(0, HELLO, hello_payload()))
            self.workers.append((worker, address))
            return
        if not self.helpers or self.helpers[-1][2] >= WORKERS_PER_HELPER:
            parent, child = multiprocessing.Pipe()
            process = multiprocessing.get_context("spawn").Process(
                target=helper_main, args=(self.endpoint, self.heartbeat, child), daemon=True)
            process.start()
            self.helpers.append([process, parent, 0])
        self.helpers[-1][2] += 1
        pending.setdefault(len(self.helpers) - 1, []).append(address)
        self.remote += 1

    def add_gateways(self, count, batch=250):
        poller = zmq.Poller()
        for sock, _ in self.agents:
            poller.register(sock, zmq.POLLIN)
        names = {sock: name for sock, name in self.agents}
        while self.worker_count() < count:
            first = self.worker_count()
            wanted = min(batch, count - first)
            for index in range(first, first + wanted):
                self.client.send_multipart([b""] + frames(0, SPAWN, dumps_internal(
                    {"address": f"w.sim.{index}".encode(), "gateway": f"gw{index}", "env": {}})))
            answered = 0
            pending = {}
            deadline = time.monotonic() + 60
            while answered < wanted:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {answered} of {wanted} SPAWNs reached the agents")
                arrived, self.backlog = self.backlog, []
                for sock, _ in poller.poll(100):
                    arrived.extend((sock, parts) for parts in drain(sock))
                for sock, parts in arrived:
                    if parts[1] != bytes([SPAWN]):
                        continue
                    address = loads_internal(parts[2])["address"]
                    sock.send_multipart(frames(0, SPAWNED, dumps_internal(
                        {"address": address, "pid": 1, "host": names[sock]})))
                    self.connect_worker(address, pending)
                    answered += 1
                for index, addresses in pending.items():
                    self.helpers[index][1].send(addresses)
                pending = {}
                self.beat()
            # The client hears SPAWNED and HELLO for each; SPAWN_FAILED or PEER_LOST is a failure.
            heard = 0
            deadline = time.monotonic() + 60
            while heard < 2 * wanted:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the client heard {heard} of {2 * wanted} answers")
                if self.client.poll(100):
                    for parts in drain(self.client):
                        kind = parts[2][0]
                        if kind in (SPAWN_FAILED, PEER_LOST):
                            raise RuntimeError(f"the broker answered {kind}: {loads_internal(parts[3])!r}")
                        if kind in (SPAWNED, HELLO):
                            heard += 1
                self.beat()

    def idle(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.beat()
            drain(self.client)
            time.sleep(0.02)

    def route(self, messages, opened):
        """DATA from the client to up to ROUTING_WORKERS workers, ROUND per channel, each answered
        with one CREDIT; returns the messages routed."""
        workers = self.workers[:ROUTING_WORKERS]
        payload = dumps_internal(12345)
        for sock, address in workers[len(opened):]:
            self.client.send_multipart([address] + frames(1, EXEC, dumps_internal(("echo", [], {}))))
            opened.add(address)
        routed = 0
        while routed < messages:
            # Every peer keeps heartbeating while the messages flow (an agent silent for the broker's
            # liveness window would take its workers with it).
            for _, address in workers:
                for _ in range(ROUND):
                    self.client.send_multipart([address] + frames(1, DATA, payload))
                self.beat()
            routed += ROUND * len(workers)
            for sock, _ in workers:
                got = self.data_seen.pop(sock, 0)
                deadline = time.monotonic() + 60
                while got < ROUND:
                    if time.monotonic() > deadline:
                        raise RuntimeError("a worker did not get its DATA")
                    if sock.poll(100):
                        got += sum(1 for parts in drain(sock) if parts[1] == bytes([DATA]))
                    self.beat()
                    got += self.data_seen.pop(sock, 0)
                sock.send_multipart(frames(1, CREDIT, dumps_internal((ROUND, ROUND * len(payload)))))
            credits = 0
            deadline = time.monotonic() + 60
            while credits < len(workers):
                if time.monotonic() > deadline:
                    raise RuntimeError("the client did not get its CREDITs")
                if self.client.poll(100):
                    credits += sum(1 for parts in drain(self.client) if parts[2] == bytes([CREDIT]))
                self.beat()
            routed += len(workers)
            self.beat()
        return routed

    def close(self):
        for process, connection, _ in self.helpers:
            try:
                connection.send(None)
            except OSError:
                pass
            process.join(5)
            if process.is_alive():
                process.kill()
        self.context.destroy(linger=0)


def raise_file_limit(wanted):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limit in (max(wanted, hard), hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
            return limit
        except (ValueError, OSError):
            continue
    return soft


def main():
    global LOCAL_WORKERS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", required=True, help="the execnet-broker executable")
    parser.add_argument("--agents", default="10,100,1000", help="agent counts of the levels")
    parser.add_argument("--gateways", default="100,1000,10000", help="gateway counts of the levels")
    parser.add_argument("--messages", type=int, default=100_000, help="routed messages per level")
    parser.add_argument("--idle-seconds", type=float, default=5.0, help="heartbeat-only time per level")
    parser.add_argument("--heartbeat", type=float, default=1.0, help="the broker's heartbeat interval (s)")
    parser.add_argument("--local-workers", type=int, default=2000,
                        help="workers held by this process (the rest by helpers)")
    args = parser.parse_args()
    LOCAL_WORKERS = args.local_workers
    levels = list(zip([int(x) for x in args.agents.split(",")], [int(x) for x in args.gateways.split(",")]))

    limit = raise_file_limit(4 * max(g for _, g in levels) + 4 * max(a for a, _ in levels) + 1024)
    note(f"RLIMIT_NOFILE {limit}")
    work = tempfile.mkdtemp(prefix="execnet-broker-scale-")
    out = open(os.path.join(work, "broker.out"), "w+")
    broker = subprocess.Popen(
        [args.broker, "serve", "--bind", "tcp://127.0.0.1:*", "--max-gateways-per-client", "0",
         "--heartbeat-interval", str(args.heartbeat), "--liveness", "10", "--log-level", "error"],
        stdout=out, stderr=subprocess.STDOUT)
    simulation = None
    try:
        endpoint = None
        for _ in range(100):
            out.seek(0)
            for line in out.read().splitlines():
                if "listening on" in line:
                    endpoint = line.split("listening on", 1)[1].split()[0]
            if endpoint:
                break
            time.sleep(0.1)
        if not endpoint:
            raise RuntimeError("the broker did not start")
        simulation = Simulation(endpoint, args.heartbeat)
        opened = set()
        for agents, gateways in levels:
            try:
                before = rss_mib(broker.pid)
                added_agents = agents - len(simulation.agents)
                simulation.add_agents(agents)
                simulation.idle(0.5)
                middle = rss_mib(broker.pid)
                added_gateways = gateways - simulation.worker_count()
                started = time.monotonic()
                simulation.add_gateways(gateways)
                note(f"{agents} agents, {gateways} gateways up ({time.monotonic() - started:.1f} s for the gateways)")
                simulation.idle(0.5)
                after = rss_mib(broker.pid)
            except (RuntimeError, zmq.ZMQError, OSError) as error:
                note(f"stopped at {len(simulation.agents)} agents and {simulation.worker_count()} gateways "
                     f"(level {agents}/{gateways}): {error}")
                break
            peers = agents + gateways
            emit("curve_scale_broker_rss_mib", peers, after)
            if added_agents > 0:
                emit("curve_scale_rss_per_agent_kib", agents, (middle - before) * 1024 / added_agents)
            if added_gateways > 0:
                emit("curve_scale_rss_per_gateway_kib", gateways, (after - middle) * 1024 / added_gateways)

            cpu_before, wall_before = cpu_seconds(broker.pid), time.monotonic()
            simulation.idle(args.idle_seconds)
            # CPU time comes in clock ticks (10 ms): idle longer (up to 3x) until there are a few.
            while cpu_seconds(broker.pid) - cpu_before < 5 / TICK and time.monotonic() - wall_before < 3 * args.idle_seconds:
                simulation.idle(0.5)
            idle_wall = time.monotonic() - wall_before
            idle_rate = (cpu_seconds(broker.pid) - cpu_before) / idle_wall
            emit("curve_scale_heartbeat_cpu_us_per_peer_s", peers, idle_rate * 1e6 / (peers + 1))

            cpu_before, wall_before = cpu_seconds(broker.pid), time.monotonic()
            try:
                routed = simulation.route(args.messages, opened)
            except RuntimeError as error:
                note(f"routing at {agents} agents and {gateways} gateways failed: {error}")
                break
            wall = time.monotonic() - wall_before
            cpu = cpu_seconds(broker.pid) - cpu_before - idle_rate * wall
            emit("curve_scale_routing_cpu_us_per_msg", peers, max(cpu, 0.0) * 1e6 / routed)
            emit("curve_scale_routing_msgs_per_s", peers, routed / wall)
            if broker.poll() is not None:
                note(f"the broker exited with {broker.returncode}")
                break
    finally:
        if simulation:
            simulation.close()
        broker.terminate()
        try:
            broker.wait(10)
        except subprocess.TimeoutExpired:
            broker.kill()
            broker.wait()
        out.seek(0)
        tail = out.read().splitlines()[-5:]
        if tail and broker.returncode not in (0, -15):
            note("broker output: " + " | ".join(tail))
        out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
