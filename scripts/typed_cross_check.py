"""A Python execnet peer of a typed task (docs/TYPED-TASKS.md, On the wire).

The Swift helper (`execnet-bench typedcheck write`) writes the channel payloads a Swift client
sends to call the typed task `order-summary` (a call per order, a chunk, a streaming call), with
nested Codable inputs. This script decodes them with execnet's own loads_internal, acts as the
worker (computes each order's summary from the decoded dicts), and writes its replies with
dumps_internal; `execnet-bench typedcheck read` decodes them into the typed outputs and compares
them with its own. Exits non-zero on any mismatch. Run through scripts/cross-check.sh.
"""

import argparse
import os
import subprocess
import sys
import tempfile

from execnet import gateway_base


def summary(order):
    """The task: what Swift's TypedCrossCheck.summary(of:) computes, from the execnet values."""
    assert isinstance(order, dict), order
    lines = order["lines"]
    assert isinstance(lines, list)
    status = order["status"]
    # Swift's synthesized enum coding: {"case": {labels...}}.
    (case, fields), = status.items()
    if case == "pending":
        state = "pending"
    elif case == "shipped":
        state = "shipped:" + fields["trackingNumber"]
    else:
        state = "cancelled:%s:%s" % (fields["reason"], "true" if fields["refunded"] is True else "false")
    assert isinstance(order["createdAt"], float)
    assert all(isinstance(k, str) and isinstance(v, bool) for k, v in order["tags"].items())
    out = {
        "id": order["id"],
        "total": float(sum(line["quantity"] * line["price"] for line in lines)),
        "itemCount": sum(line["quantity"] for line in lines),
        "state": state,
    }
    email = order["customer"].get("email")  # an absent key is Swift's nil
    if email is not None:
        out["contact"] = email
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--swift", required=True, help="path of the execnet-bench executable")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="execnet-typedcheck-") as work:
        calls_path = os.path.join(work, "calls.hex")
        replies_path = os.path.join(work, "replies.hex")
        subprocess.run([args.swift, "typedcheck", "write", "--file", calls_path], check=True)
        replies = []
        with open(calls_path, encoding="utf-8") as f:
            for line in f.read().split():
                message = gateway_base.loads_internal(bytes.fromhex(line))
                assert isinstance(message, tuple), message
                kind, ident = message[0], message[1]
                if kind == "call":
                    replies.append(("ok", ident, summary(message[2])))
                elif kind == "calls":
                    replies.append(("results", ident, [("ok", summary(order)) for order in message[2]]))
                elif kind == "stream":
                    for item in message[2]["lines"]:
                        replies.append(("item", ident, item))
                    replies.append(("end", ident))
                else:
                    raise AssertionError("unexpected message %r" % (message,))
        # A worker-side failure, as the typed protocol reports it.
        replies.append(("err", 4, "ValueError", "no such order"))
        with open(replies_path, "w", encoding="utf-8") as f:
            for reply in replies:
                f.write(gateway_base.dumps_internal(reply).hex() + "\n")
        print("python: decoded the Swift client's typed calls and answered %d replies" % len(replies))
        result = subprocess.run([args.swift, "typedcheck", "read", "--file", replies_path])
        if result.returncode != 0:
            print("typed cross-check: FAILED")
            sys.exit(1)
        print("typed cross-check: ok")


if __name__ == "__main__":
    main()
