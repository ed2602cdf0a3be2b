"""Python side of `execnet-bench serializer`: times execnet.dumps/loads on the same four
workloads as the Swift benchmark and prints one line per case:
`name dumps_ms loads_ms encoded_bytes` (medians over --reps runs)."""

import argparse
import statistics
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
        data = execnet.dumps(value)
        assert execnet.loads(data) == value
        dumps_ms = median_ms(args.reps, lambda: execnet.dumps(value))
        loads_ms = median_ms(args.reps, lambda: execnet.loads(data))
        print(f"{name} {dumps_ms:.3f} {loads_ms:.3f} {len(data)}", flush=True)


if __name__ == "__main__":
    main()
