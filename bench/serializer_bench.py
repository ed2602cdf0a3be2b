"""Python side of `execnet-bench serializer`: times execnet.dumps/loads on the same four
workloads as the Swift benchmark and prints one line per case:
`name dumps_ms loads_ms encoded_bytes` (medians over --reps runs)."""

import argparse
import math
import statistics
import struct
import time

import execnet


def workloads():
    yield "list_1m_ints", list(range(1_000_000))
    yield "dict_100k_str_int", {f"key{i}": i for i in range(100_000)}
    yield "bytes_16mib", bytes((i * 31) & 0xFF for i in range(256)) * (16 << 12)
    yield "structs_100k", [
        {"id": i, "name": f"item{i}", "score": i * 0.5, "active": i % 2 == 0}
        for i in range(100_000)
    ]
    value = tuple(range(100_000))
    for _ in range(2_900):
        value = frozenset([value])
    yield "nested_frozensets", value


def nested_frozensets_bytes():
    """The program execnet.dumps would write, built by hand: its recursive encoder cannot
    go 2,900 levels deep under Python's default recursion limit."""
    out = [b"\x02"]
    out += [b"F" + struct.pack(">i", i) for i in range(100_000)]
    out.append(b"@" + struct.pack(">i", 100_000))
    out += [b"E" + struct.pack(">i", 1)] * 2_900
    out.append(b"Q")
    return b"".join(out)


def median_ms(reps, fn):
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    for name, value in workloads():
        try:
            data = execnet.dumps(value)
            dumps_ms = median_ms(args.reps, lambda: execnet.dumps(value))
        except RecursionError:
            data = nested_frozensets_bytes()
            dumps_ms = math.nan
        assert execnet.loads(data) == value
        loads_ms = median_ms(args.reps, lambda: execnet.loads(data))
        print(f"{name} {dumps_ms:.3f} {loads_ms:.3f} {len(data)}", flush=True)


if __name__ == "__main__":
    main()
