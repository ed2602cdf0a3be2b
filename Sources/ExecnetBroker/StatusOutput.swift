// Rendering a broker status value: as a human table and as JSON (no Foundation).

import ExecnetBrokerServer
import ExecnetCore
import ExecnetValue

/// JSON text for a value of plain kinds (dicts with string keys, lists, strings, numbers, bools, none).
func jsonText(_ value: Value) -> String {
    switch value {
    case .none: return "null"
    case .bool(let flag): return flag ? "true" : "false"
    case .int(let number): return String(number)
    case .bigInt(let number): return "\(number)"
    case .float(let number): return number.isFinite ? "\(number)" : "null"
    case .string(let text): return jsonString(text)
    case .bytes(let bytes): return jsonString(String(decoding: bytes, as: UTF8.self))
    case .list(let items), .tuple(let items): return "[" + items.map(jsonText).joined(separator: ", ") + "]"
    case .dict(let dict):
        return "{" + dict.map { key, item in
            let name: String
            if case .string(let text) = key { name = text } else { name = "\(key)" }
            return jsonString(name) + ": " + jsonText(item)
        }.joined(separator: ", ") + "}"
    default: return jsonString("\(value)")
    }
}

private func jsonString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 {
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}

/// A human-readable status table.
func statusTable(_ status: Value) -> String {
    guard case .dict(let dict) = status else { return "\(status)" }
    func field(_ name: String) -> Value? { dict[.string(name)] }
    func text(_ value: Value?) -> String {
        switch value {
        case .string(let text)?: return text
        case .int(let number)?: return String(number)
        case .float(let number)?: return String(Int(number.rounded()))
        case .bool(let flag)?: return flag ? "yes" : "no"
        default: return "-"
        }
    }
    func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(1, width - text.count)) }
    var lines: [String] = []
    lines.append("broker pid \(text(field("pid"))), up \(text(field("uptime_s"))) s, \(text(field("clients"))) clients, \(text(field("workers"))) workers, \(text(field("channels"))) open channels")
    lines.append("messages in \(text(field("messages_in"))) (\(text(field("rate_in")))/s), out \(text(field("messages_out"))) (\(text(field("rate_out")))/s)")
    lines.append("")
    lines.append(pad("HOST", 24) + pad("HOSTNAME", 24) + pad("SLOTS", 8) + "WORKERS")
    if case .list(let hosts)? = field("hosts") {
        for case .dict(let host) in hosts {
            lines.append(pad(text(host[.string("name")]), 24) + pad(text(host[.string("hostname")]), 24)
                         + pad(text(host[.string("slots")]), 8) + text(host[.string("workers")]))
        }
    }
    lines.append("")
    lines.append(pad("GATEWAY", 16) + pad("HOST", 24) + pad("PID", 10) + pad("CONNECTED", 11) + "CHANNELS")
    if case .list(let gateways)? = field("gateways") {
        for case .dict(let gateway) in gateways {
            lines.append(pad(text(gateway[.string("gateway")]), 16) + pad(text(gateway[.string("host")]), 24)
                         + pad(text(gateway[.string("pid")]), 10) + pad(text(gateway[.string("connected")]), 11)
                         + text(gateway[.string("channels")]))
        }
    }
    return lines.joined(separator: "\n")
}
