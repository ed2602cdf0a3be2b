// `execnet-bench serializer`: encode/decode throughput of the value serializer on four
// workloads, optionally side by side with Python execnet's dumps/loads (bench/serializer_bench.py
// run by the given interpreter). Reports the median of several repetitions.

import ArgumentParser
import Execnet
import Foundation

struct SerializerBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serializer",
        abstract: "Measure dumps/loads throughput (build with -c release).")

    @Flag(help: "Fewer repetitions, for a quick smoke run.")
    var quick = false

    @Option(help: "Repetitions per measurement (median is reported). Default 7, or 3 with --quick.")
    var reps: Int?

    @Option(help: "A Python interpreter with execnet installed; runs the Python side for comparison.")
    var python: String?

    @Option(help: "The Python benchmark script.")
    var pythonScript = "bench/serializer_bench.py"

    @Option(help: "Run only the named case (for profiling): list_1m_ints, dict_100k_str_int, bytes_16mib, structs_100k, nested_frozensets.")
    var only: String?

    private func selected(_ name: String) -> Bool { only == nil || only == name }

    /// The record type of workload (d).
    struct Item: Codable, Equatable {
        var id: Int
        var name: String
        var score: Double
        var active: Bool
    }

    struct Result {
        var name: String
        var bytes: Int
        var encode: Duration
        var decode: Duration
    }

    mutating func run() throws {
        let reps = max(1, self.reps ?? (quick ? 3 : 7))
        var results: [Result] = []
        var lookups: (first: Duration, again: Duration)?
        var sink = 0

        // (a) a list of 1,000,000 small ints: Python's list(range(1_000_000))
        if selected("list_1m_ints") {
            let list = Value.list((0..<1_000_000).map { .int(Int64($0)) })
            results.append(try measureValue("list_1m_ints", list, reps: reps, sink: &sink))
        }

        // (b) a dict of 100,000 string keys to ints: {f"key{i}": i}
        if selected("dict_100k_str_int") {
            var entries = ValueDictionary(minimumCapacity: 100_000)
            for i in 0..<100_000 { entries[.string("key\(i)")] = .int(Int64(i)) }
            results.append(try measureValue("dict_100k_str_int", .dict(entries), reps: reps, sink: &sink))
            lookups = try measureLookups(entries, reps: reps, sink: &sink)
        }

        // (c) one 16 MiB byte string
        if selected("bytes_16mib") {
            let blob = Value.bytes((0..<(16 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
            results.append(try measureValue("bytes_16mib", blob, reps: reps, sink: &sink))
        }

        // (d) 100,000 small Codable structs through ValueEncoder + dumps, and loads + ValueDecoder
        if selected("structs_100k") {
            results.append(try measureStructs(reps: reps, sink: &sink))
        }

        // (e) issue 10's slow decode: frozensets 2,900 deep around a tuple of 100,000 ints
        // (514 KB); decoding once took depth x size.
        if selected("nested_frozensets") {
            var program: [UInt8] = [Serializer.formatVersion]
            func int32(_ opcode: UInt8, _ n: Int) {
                let raw = UInt32(truncatingIfNeeded: n)
                program += [opcode, UInt8(raw >> 24), UInt8((raw >> 16) & 0xFF), UInt8((raw >> 8) & 0xFF), UInt8(raw & 0xFF)]
            }
            for i in 0..<100_000 { int32(UInt8(ascii: "F"), i) }
            int32(UInt8(ascii: "@"), 100_000)
            for _ in 0..<2_900 { int32(UInt8(ascii: "E"), 1) }
            program.append(UInt8(ascii: "Q"))
            results.append(try measureValue("nested_frozensets", try loads(program), reps: reps, sink: &sink))
        }

        var pythonResults: [String: (dumps: Double, loads: Double, bytes: Int)] = [:]
        if let python {
            pythonResults = try runPython(python, reps: reps)
        }
        printTable(results, python: pythonResults, reps: reps)
        if let lookups {
            print("dict_100k_str_int lookups of all 100000 keys in a freshly decoded dict: first pass (builds the key table) "
                  + String(format: "%.2f ms, second pass %.2f ms", ms(lookups.first), ms(lookups.again)))
        }
        if sink == 42 { print("") }  // keeps the measured work observable
    }

    private func measureStructs(reps: Int, sink: inout Int) throws -> Result {
        let items = (0..<100_000).map { Item(id: $0, name: "item\($0)", score: Double($0) * 0.5, active: $0 % 2 == 0) }
        var encoded: [UInt8] = []
        let encodeTime = try median(reps) {
            encoded = try dumps(try ValueEncoder().encode(items))
            sink &+= encoded.count
        }
        let decodeTime = try median(reps) {
            let back = try ValueDecoder().decode([Item].self, from: try loads(encoded))
            sink &+= back.count
        }
        guard try ValueDecoder().decode([Item].self, from: try loads(encoded)) == items else {
            throw ValidationError("structs_100k did not roundtrip")
        }
        return Result(name: "structs_100k", bytes: encoded.count, encode: encodeTime, decode: decodeTime)
    }

    /// Decodes (b) (untimed), then times looking up every key once, twice: the first pass
    /// includes building the dictionary's key table.
    private func measureLookups(_ entries: ValueDictionary, reps: Int, sink: inout Int) throws -> (first: Duration, again: Duration) {
        let encoded = try dumps(.dict(entries))
        let keys = entries.keys
        var first: [Duration] = []
        var again: [Duration] = []
        let clock = ContinuousClock()
        for _ in 0..<reps {
            guard case .dict(let decoded) = try loads(encoded) else { throw ValidationError("not a dict") }
            var found = 0
            first.append(clock.measure { for key in keys where decoded[key] != nil { found += 1 } })
            again.append(clock.measure { for key in keys where decoded[key] != nil { found += 1 } })
            guard found == 2 * keys.count else { throw ValidationError("lookups missed keys") }
            sink &+= found
        }
        return (first.sorted()[reps / 2], again.sorted()[reps / 2])
    }

    private func measureValue(_ name: String, _ value: Value, reps: Int, sink: inout Int) throws -> Result {
        var encoded: [UInt8] = []
        var total = 0
        let encodeTime = try median(reps) {
            encoded = try dumps(value)
            total &+= encoded.count
        }
        let decodeTime = try median(reps) {
            let decoded = try loads(encoded)
            if case .list(let items) = decoded { total &+= items.count }
        }
        guard try loads(encoded) == value else { throw ValidationError("\(name) did not roundtrip") }
        sink &+= total
        return Result(name: name, bytes: encoded.count, encode: encodeTime, decode: decodeTime)
    }

    private func median(_ reps: Int, _ body: () throws -> Void) rethrows -> Duration {
        let clock = ContinuousClock()
        var times: [Duration] = []
        for _ in 0..<reps {
            times.append(try clock.measure(body))
        }
        return times.sorted()[times.count / 2]
    }

    private func runPython(_ python: String, reps: Int) throws -> [String: (dumps: Double, loads: Double, bytes: Int)] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [pythonScript, "--reps", String(reps)]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ValidationError("python benchmark failed with status \(process.terminationStatus)")
        }
        var results: [String: (dumps: Double, loads: Double, bytes: Int)] = [:]
        for line in String(decoding: output, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 4, let d = Double(fields[1]), let l = Double(fields[2]), let b = Int(fields[3]) else { continue }
            results[String(fields[0])] = (d, l, b)
        }
        return results
    }

    private func ms(_ d: Duration) -> Double {
        Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) * 1e-15
    }

    private func printTable(_ results: [Result], python: [String: (dumps: Double, loads: Double, bytes: Int)], reps: Int) {
        func pad(_ s: String, _ width: Int) -> String {
            s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
        }
        func fmt(_ v: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", v) }
        print("serializer benchmark, median of \(reps) runs; MB/s counts encoded bytes (1 MB = 10^6 bytes)")
        var header = "case".padding(toLength: 18, withPad: " ", startingAt: 0) + pad("bytes", 10)
        header += pad("swift enc ms", 13) + pad("MB/s", 8) + pad("swift dec ms", 13) + pad("MB/s", 8)
        if !python.isEmpty { header += pad("py dumps ms", 12) + pad("py loads ms", 12) + pad("enc x", 8) + pad("dec x", 8) }
        print(header)
        for r in results {
            let enc = ms(r.encode), dec = ms(r.decode)
            var line = r.name.padding(toLength: 18, withPad: " ", startingAt: 0) + pad(String(r.bytes), 10)
            line += pad(fmt(enc, 2), 13) + pad(fmt(Double(r.bytes) / 1e3 / enc, 0), 8)
            line += pad(fmt(dec, 2), 13) + pad(fmt(Double(r.bytes) / 1e3 / dec, 0), 8)
            if let p = python[r.name] {
                line += pad(fmt(p.dumps), 12) + pad(fmt(p.loads), 12) + pad(fmt(p.dumps / enc), 8) + pad(fmt(p.loads / dec), 8)
                if p.bytes != r.bytes { line += "  (python encoded \(p.bytes) bytes)" }
            }
            print(line)
        }
    }
}
