"""The frames of docs/PROTOCOL.md, written from the doc alone, for the Python peers in this folder.

Values use Python execnet's own serializer (execnet 2.1.2): frames carry its internal form, the
bytes of `execnet.dumps` without the leading version byte 0x02.
"""

import struct

from execnet.gateway_base import dumps_internal, loads_internal

PROTOCOL = 2

# Gateway messages ("Channel and gateway messages").
HELLO, EXEC, DATA, CLOSE, CLOSE_ERROR, CREDIT, STATUS, TERMINATE, BYE, FAREWELL = range(1, 11)
# Broker messages ("Broker messages").
(HEARTBEAT, CLIENT_HELLO, WELCOME, SPAWN, SPAWNED, SPAWN_FAILED, PEER_LOST, KILL, AGENT_HELLO,
 WORKER_EXITED, UNKNOWN_PEER, BROKER_STATUS) = range(11, 23)

# Flow control: the window each channel end starts with, and the receiver's grant threshold.
WINDOW_MESSAGES = 1024
WINDOW_BYTES = 16 << 20


def dumps(value):
    """A payload: the serializer's internal form of `value`."""
    return dumps_internal(value)


def loads(payload):
    """The value of a payload."""
    return loads_internal(payload)


def frames(channel, kind, payload=b""):
    """The three frames of a message: channel id (4 bytes, big-endian signed), type (1 byte), payload."""
    return [struct.pack(">i", channel), bytes([kind]), payload]


def parse(parts):
    """(channel, type, payload) of three frames; raises ValueError on anything else."""
    if len(parts) != 3 or len(parts[0]) != 4 or len(parts[1]) != 1:
        raise ValueError("not a message: %r" % (parts,))
    return struct.unpack(">i", parts[0])[0], parts[1][0], parts[2]


class Channel:
    """One channel end's flow-control bookkeeping ("Flow control", "CREDIT").

    Sending: each DATA takes one message and len(payload) bytes of credit; a DATA may go while
    message credit is left and the byte credit covers it (or is a whole window: nothing in flight).
    Receiving: what the user consumed is granted back as a CREDIT delta (messages, bytes) once
    half a window has been consumed.
    """

    def __init__(self, cid):
        self.id = cid
        self.send_messages = WINDOW_MESSAGES
        self.send_bytes = WINDOW_BYTES
        self.consumed_messages = 0
        self.consumed_bytes = 0
        self.pending = []          # DATA payloads waiting for credit, in order
        self.close_sent = False
        self.close_received = False
        self.error = None          # the text of a CLOSE_ERROR received

    def may_send(self, size):
        return self.send_messages > 0 and (self.send_bytes >= size or self.send_bytes >= WINDOW_BYTES)

    def take(self, size):
        self.send_messages -= 1
        self.send_bytes -= size

    def granted(self, messages, bytes_):
        self.send_messages += messages
        self.send_bytes += bytes_

    def consumed(self, size):
        """Counts one consumed DATA payload; returns the CREDIT payload to send, or None."""
        self.consumed_messages += 1
        self.consumed_bytes += size
        if self.consumed_messages < WINDOW_MESSAGES // 2 and self.consumed_bytes < WINDOW_BYTES // 2:
            return None
        grant = (self.consumed_messages, self.consumed_bytes)
        self.consumed_messages = self.consumed_bytes = 0
        return dumps(grant)
