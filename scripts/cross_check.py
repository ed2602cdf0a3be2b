"""Cross-implementation check between Python execnet and swift-execnet's serializer.

python -> swift: random values are written with execnet.dumps; the Swift helper decodes and
re-encodes each one (and checks bytes and repr where they are deterministic); Python decodes the
re-encodings and compares them with the originals, strictly (types, float bits, dict order).

swift -> python: the Swift helper writes random values of its own, each with a JSON description
of its structure and its repr; Python decodes them and compares with both, and, where execnet
can encode the value, checks that execnet.dumps gives the same bytes.

Exits non-zero on any mismatch. Run through scripts/cross-check.sh.
"""

import argparse
import json
import os
import random
import struct
import subprocess
import sys
import tempfile

import execnet

# Code point ranges whose Unicode properties are stable across Python and Swift versions.
RANGES = [(0x20, 0x7E), (0x00, 0x1F), (0x7F, 0xFF), (0x370, 0x3FF), (0x400, 0x4FF),
          (0x2000, 0x206F), (0x4E00, 0x4FFF), (0xE000, 0xE0FF), (0x1F600, 0x1F64F), (0xFFF0, 0xFFFF)]


def gen_str(r):
    out = []
    for _ in range(r.randint(0, 10)):
        lo, hi = RANGES[0] if r.random() < 0.5 else r.choice(RANGES[1:])
        out.append(chr(r.randint(lo, hi)))
    return "".join(out)


def gen_int(r):
    k = r.randrange(6)
    if k == 0:
        return r.randint(-5, 5)
    if k == 1:
        return r.randint(-2**31, 2**31 - 1)
    if k == 2:
        return r.randint(-2**31, 2**63 - 1)  # execnet.dumps cannot write ints below -2**31
    if k == 3:
        return r.choice([2**31, 2**31 - 1, -2**31, 2**63 - 1, 2**63, 2**64 - 1, 2**64])
    if k == 4:
        return r.randint(0, 2**64 - 1)
    return int(str(r.randint(1, 9)) + "".join(str(r.randint(0, 9)) for _ in range(r.randint(18, 80))))


def gen_float(r):
    k = r.randrange(4)
    if k == 0:
        return r.choice([0.0, -0.0, float("inf"), float("-inf"), float("nan"), 1.5, 0.1, 1e16, 1e-5, 123456.789])
    if k == 1:
        return struct.unpack(">d", r.getrandbits(64).to_bytes(8, "big"))[0]
    return r.uniform(-1e6, 1e6)


# Members Python merges with one another (1, True, 1.0; 0, -0.0, complex(0, -0.0); (1,), (True,))
# or keeps apart although they look alike (each NaN object is its own member).
MERGING = [1, True, 1.0, complex(1, 0), 0, False, 0.0, -0.0, complex(0, -0.0), (1,), (True,), (1.0,),
           frozenset([1]), frozenset([True]), 2**70, float(2**70), 1.5, complex(1.5, 0), "1", b"1", None]


def gen_merging(r):
    if r.random() < 0.2:
        return float("nan") if r.random() < 0.7 else (float("nan"),)
    return r.choice(MERGING)


def raw_merging(r):
    """Bytes of a set, frozenset or dict whose members repeat in Python's sense (which
    execnet.dumps never writes, but a peer may), and the value Python's loads makes of them."""
    members = [gen_merging(r) for _ in range(r.randint(2, 7))]
    body = [execnet.dumps(m)[1:-1] for m in members]
    kind = r.randrange(3)
    if kind == 2:
        data = b"\x02J" + b"".join(b + execnet.dumps(i)[1:-1] + b"P" for i, b in enumerate(body)) + b"Q"
    else:
        data = b"\x02" + b"".join(body) + (b"O" if kind == 0 else b"E") + struct.pack(">i", len(body)) + b"Q"
    return data, execnet.loads(data)


def gen_key(r, depth):
    """Mostly kinds Python does not merge with other kinds of equal value; sometimes merging
    ones and NaNs (Python's own dicts and sets have already merged them)."""
    if r.random() < 0.05:
        return gen_merging(r)
    if depth > 0 and r.random() < 0.2:
        items = [gen_key(r, depth - 1) for _ in range(r.randint(0, 3))]
        return tuple(items) if r.random() < 0.5 else frozenset(items)
    k = r.randrange(5)
    if k == 0:
        return None
    if k == 1:
        return gen_int(r)
    if k == 2:
        return r.randbytes(r.randint(0, 6))
    return gen_str(r)


def gen_scalar(r):
    k = r.randrange(8)
    if k == 0:
        return r.random() < 0.5
    if k == 1:
        return gen_float(r)
    if k == 2:
        return complex(gen_float(r), gen_float(r))
    return gen_key(r, 0)


def gen_value(r, depth):
    if depth <= 0 or r.random() < 0.4:
        return gen_scalar(r)
    n = r.randint(0, 5)
    k = r.randrange(6)
    if k in (0, 1):
        return [gen_value(r, depth - 1) for _ in range(n)]
    if k == 2:
        return tuple(gen_value(r, depth - 1) for _ in range(n))
    if k == 3:
        d = {}
        if r.random() < 0.1:
            d["\u00e9"] = gen_value(r, depth - 1)
            d["e\u0301"] = gen_value(r, depth - 1)
        for _ in range(n):
            d[gen_key(r, depth - 1)] = gen_value(r, depth - 1)
        return d
    members = [gen_key(r, depth - 1) for _ in range(n)]
    return set(members) if k == 4 else frozenset(members)


def fbits(x):
    return struct.pack(">d", x).hex()


def canon(v):
    """A strict, comparable form: types kept apart, floats by bits, dict order kept."""
    t = type(v)
    if v is None:
        return ("n",)
    if t is bool:
        return ("b", v)
    if t is int:
        return ("i", v)
    if t is float:
        return ("f", fbits(v))
    if t is complex:
        return ("c", fbits(v.real), fbits(v.imag))
    if t is bytes:
        return ("y", v.hex())
    if t is str:
        return ("s", v)
    if t is list:
        return ("l", tuple(canon(x) for x in v))
    if t is tuple:
        return ("t", tuple(canon(x) for x in v))
    if t is dict:
        return ("d", tuple((canon(k), canon(x)) for k, x in v.items()))
    if t is set:
        return ("S", tuple(sorted((canon(x) for x in v), key=repr)))
    if t is frozenset:
        return ("F", tuple(sorted((canon(x) for x in v), key=repr)))
    raise TypeError(f"unexpected type {t}")


def tree_canon(t):
    tag = t[0]
    if tag == "n":
        return ("n",)
    if tag == "b":
        return ("b", t[1])
    if tag == "i":
        return ("i", int(t[1]))
    if tag == "f":
        return ("f", t[1])
    if tag == "c":
        return ("c", t[1], t[2])
    if tag in ("y", "s"):
        return (tag, t[1])
    if tag in ("l", "t"):
        return (tag, tuple(tree_canon(x) for x in t[1]))
    if tag == "d":
        return ("d", tuple((tree_canon(k), tree_canon(x)) for k, x in t[1]))
    if tag in ("S", "F"):
        return (tag, tuple(sorted((tree_canon(x) for x in t[1]), key=repr)))
    raise ValueError(f"unexpected tag {tag}")


def tree_value(t):
    """The Python value a tree describes, built as Python builds it (merging members)."""
    tag = t[0]
    if tag == "n":
        return None
    if tag == "b":
        return t[1]
    if tag == "i":
        return int(t[1])
    if tag == "f":
        return struct.unpack(">d", bytes.fromhex(t[1]))[0]
    if tag == "c":
        return complex(struct.unpack(">d", bytes.fromhex(t[1]))[0], struct.unpack(">d", bytes.fromhex(t[2]))[0])
    if tag == "y":
        return bytes.fromhex(t[1])
    if tag == "s":
        return t[1]
    if tag == "l":
        return [tree_value(x) for x in t[1]]
    if tag == "t":
        return tuple(tree_value(x) for x in t[1])
    if tag == "d":
        d = {}
        for k, x in t[1]:
            d[tree_value(k)] = tree_value(x)
        return d
    if tag == "S":
        return set(tree_value(x) for x in t[1])
    if tag == "F":
        return frozenset(tree_value(x) for x in t[1])
    raise ValueError(f"unexpected tag {tag}")


def has_set(v):
    if isinstance(v, (set, frozenset)):
        return True
    if isinstance(v, (list, tuple)):
        return any(has_set(x) for x in v)
    if isinstance(v, dict):
        return any(has_set(k) or has_set(x) for k, x in v.items())
    return False


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--swift", required=True, help="path of the execnet-bench executable")
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=20240501)
    args = parser.parse_args()

    r = random.Random(args.seed)
    values = [gen_value(r, 4) for _ in range(args.count)]
    # Raw bytes with repeated members: Swift must merge exactly what Python's loads merges.
    raw = {}
    for i in range(0, args.count, 10):
        raw[i], values[i] = raw_merging(r)
    problems = []
    with tempfile.TemporaryDirectory(prefix="execnet-crosscheck-") as work:
        py_path = os.path.join(work, "python-values.txt")
        back_path = os.path.join(work, "swift-reencoded.txt")
        gen_path = os.path.join(work, "swift-values.txt")
        with open(py_path, "w", encoding="utf-8") as f:
            for i, v in enumerate(values):
                exact = "0" if has_set(v) or i in raw else "1"
                data = raw[i] if i in raw else execnet.dumps(v)
                f.write(f"{data.hex()}\t{exact}\t{repr(v)}\n")
        result = subprocess.run(
            [args.swift, "crosscheck", "--in", py_path, "--out", back_path,
             "--generate", str(args.count), "--seed", str(args.seed), "--generated-out", gen_path])
        if result.returncode != 0:
            problems.append(f"swift helper exited with {result.returncode}")

        py_ok = 0
        with open(back_path, encoding="utf-8") as f:
            back = f.read().split("\n")
        for i, v in enumerate(values):
            try:
                decoded = execnet.loads(bytes.fromhex(back[i]))
            except Exception as e:  # noqa: BLE001
                problems.append(f"python->swift #{i}: cannot load Swift's re-encoding: {e!r}")
                continue
            if canon(decoded) != canon(v):
                problems.append(f"python->swift #{i}: {decoded!r} != {v!r}")
            else:
                py_ok += 1

        swift_ok = 0
        swift_total = 0
        if os.path.exists(gen_path):
            with open(gen_path, encoding="utf-8") as f:
                lines = [line for line in f.read().split("\n") if line]
            for i, line in enumerate(lines):
                swift_total += 1
                hex_text, tree, swift_repr = line.split("\t", 2)
                if hex_text == "-":
                    # Swift refused to encode it (pythonDuplicate): Python must merge something.
                    t = json.loads(tree)
                    if canon(tree_value(t)) == tree_canon(t):
                        problems.append(f"swift->python #{i}: Swift refused {tree[:200]}, which Python keeps whole")
                    else:
                        swift_ok += 1
                    continue
                data = bytes.fromhex(hex_text)
                try:
                    decoded = execnet.loads(data)
                except Exception as e:  # noqa: BLE001
                    problems.append(f"swift->python #{i}: cannot load: {e!r} ({hex_text[:80]})")
                    continue
                ok = True
                if canon(decoded) != tree_canon(json.loads(tree)):
                    problems.append(f"swift->python #{i}: {decoded!r} does not match {tree[:200]}")
                    ok = False
                if swift_repr and repr(decoded) != swift_repr:
                    problems.append(f"swift->python #{i}: repr {decoded!r} vs Swift's {swift_repr}")
                    ok = False
                if not has_set(decoded):
                    try:
                        again = execnet.dumps(decoded)
                    except Exception:  # noqa: BLE001  (ints below -2**31: execnet cannot encode them)
                        again = None
                    if again is not None and again != data:
                        problems.append(f"swift->python #{i}: execnet.dumps gives other bytes")
                        ok = False
                swift_ok += ok

    for p in problems[:30]:
        print("MISMATCH", p, file=sys.stderr)
    print(f"cross-check: {py_ok} python->swift ok, {swift_ok} swift->python ok"
          + (f", {len(problems)} mismatches" if problems else ""))
    if problems or py_ok != args.count or swift_ok != args.count or swift_total != args.count:
        sys.exit(1)


if __name__ == "__main__":
    main()
