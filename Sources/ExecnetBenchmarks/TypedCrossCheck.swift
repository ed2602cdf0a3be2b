// `execnet-bench typedcheck`: the Swift half of the typed-task check in scripts/cross-check.sh.
// `write` writes the channel payloads a Swift client sends to call a typed task (a call, a chunk
// and a streaming call of `order-summary`, nested Codable inputs); a Python execnet peer decodes
// them with execnet's own loads_internal, acts as the worker, and writes its replies with
// dumps_internal; `read` decodes those replies into the typed outputs and compares them with the
// summaries Swift computes itself.

import ArgumentParser
import Execnet
import Foundation

struct TypedCrossCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "typedcheck",
        abstract: "Swift side of the typed-task check with a Python execnet peer (see scripts/cross-check.sh).")

    @Argument(help: "write: the calls a Swift client sends; read: check the Python worker's replies.")
    var mode: String

    @Option(help: "The file of channel payloads (hex, one per line).")
    var file: String

    struct Customer: Codable, Equatable {
        var name: String
        var email: String?
    }
    struct Line: Codable, Equatable {
        var sku: String
        var quantity: Int
        var price: Double
    }
    enum Status: Codable, Equatable {
        case pending
        case shipped(trackingNumber: String)
        case cancelled(reason: String, refunded: Bool)
    }
    struct Order: Codable, Equatable {
        var id: Int
        var customer: Customer
        var lines: [Line]
        var status: Status
        var createdAt: Double
        var tags: [String: Bool]
    }
    struct Summary: Codable, Equatable {
        var id: Int
        var total: Double
        var itemCount: Int
        var state: String
        var contact: String?
    }

    static let orders: [Order] = [
        Order(id: 1, customer: Customer(name: "Ada", email: "ada@example.org"),
              lines: [Line(sku: "A-1", quantity: 2, price: 2.5), Line(sku: "B-7", quantity: 1, price: 10)],
              status: .pending, createdAt: 1_764_766_800.5, tags: ["gift": true]),
        Order(id: 2, customer: Customer(name: "Zoë ✓", email: nil), lines: [],
              status: .shipped(trackingNumber: "TN-42"), createdAt: 0, tags: [:]),
        Order(id: -3, customer: Customer(name: "", email: ""),
              lines: Array(repeating: Line(sku: "x", quantity: 3, price: 0.25), count: 500),
              status: .cancelled(reason: "late", refunded: true), createdAt: -1.25, tags: ["a": false, "b": true]),
    ]

    /// What the task computes; the Python worker computes the same from the decoded dicts.
    static func summary(of order: Order) -> Summary {
        let state: String = switch order.status {
        case .pending: "pending"
        case .shipped(let number): "shipped:\(number)"
        case .cancelled(let reason, let refunded): "cancelled:\(reason):\(refunded)"
        }
        return Summary(id: order.id, total: order.lines.reduce(0) { $0 + Double($1.quantity) * $1.price },
                       itemCount: order.lines.reduce(0) { $0 + $1.quantity }, state: state, contact: order.customer.email)
    }

    mutating func run() throws {
        let encoder = ValueEncoder()
        switch mode {
        case "write":
            // The payloads TypedCaller and gateway.stream send (docs/TYPED-TASKS.md, On the wire).
            var messages: [Value] = []
            for (index, order) in Self.orders.enumerated() {
                messages.append(.tuple(["call", .int(Int64(index + 1)), try encoder.encode(order)]))
            }
            messages.append(.tuple(["calls", 10, .list(try Self.orders.map { try encoder.encode($0) })]))
            messages.append(.tuple(["stream", 1, try encoder.encode(Self.orders[0])]))
            let lines = try messages.map { Hex.encode(try Serializer.dumpsUnversioned($0)) }
            try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
            print("swift: wrote \(messages.count) typed-task calls")
        case "read":
            let text = try String(contentsOfFile: file, encoding: .utf8)
            var failures: [String] = []
            var checked = 0
            let decoder = ValueDecoder()
            func expect(_ condition: Bool, _ what: @autoclosure () -> String) {
                checked += 1
                if !condition { failures.append(what()) }
            }
            for line in text.split(separator: "\n") {
                guard let bytes = Hex.decode(line) else {
                    failures.append("malformed line \(line)")
                    continue
                }
                let reply = try Serializer.loadsUnversioned(bytes)
                guard case .tuple(let parts) = reply, parts.count >= 2, case .string(let kind) = parts[0],
                      case .int(let id) = parts[1] else {
                    failures.append("not a typed-task reply: \(reply)")
                    continue
                }
                switch (kind, id) {
                case ("ok", 1...3):
                    let summary = try decoder.decode(Summary.self, from: parts[2])
                    expect(summary == Self.summary(of: Self.orders[Int(id) - 1]), "call \(id): \(summary)")
                case ("results", 10):
                    guard case .list(let results) = parts[2], results.count == Self.orders.count else {
                        failures.append("chunk reply: \(parts[2])")
                        continue
                    }
                    for (order, result) in zip(Self.orders, results) {
                        guard case .tuple(let item) = result, item.count == 2, item[0] == "ok" else {
                            failures.append("chunk result: \(result)")
                            continue
                        }
                        expect(try decoder.decode(Summary.self, from: item[1]) == Self.summary(of: order), "chunk item of \(order.id)")
                    }
                case ("item", 1):
                    let line = try decoder.decode(Line.self, from: parts[2])
                    expect(Self.orders[0].lines.contains(line), "stream item \(line)")
                case ("end", 1):
                    expect(parts.count == 2, "stream end \(reply)")
                case ("err", 4):
                    expect(parts.count == 4 && parts[2] == "ValueError", "error reply \(reply)")
                default:
                    failures.append("unexpected reply \(reply)")
                }
            }
            for failure in failures { FileHandle.standardError.write(Data(("typed mismatch: " + failure + "\n").utf8)) }
            print("swift: \(checked - failures.count)/\(checked) typed replies from Python decoded as expected")
            if !failures.isEmpty || checked < 10 { throw ExitCode(1) }
        default:
            throw ValidationError("mode is write or read")
        }
    }
}
