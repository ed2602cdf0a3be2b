// The typed tasks the integration tests call. Tests/ExecnetIntegrationTests/TypedTaskTests.swift
// declares the same types (same names, same Codable shapes), as a client and a worker that share no
// module would.

import Execnet
import Synchronization

enum Square: TypedTask {
    typealias Input = Int
    typealias Output = Int
    static let name = "typed-square"
}

struct Record: Codable, Sendable, Equatable {
    enum Shape: Codable, Sendable, Equatable {
        case circle(radius: Double)
        case rectangle(width: Int, height: Int)
        case none
    }
    struct Inner: Codable, Sendable, Equatable {
        var label: String
        var tags: [String]
        var weight: Double?
    }
    var id: Int
    var name: String?
    var shape: Shape
    var inner: Inner
    var children: [Inner]
    var timestamp: Double
    var flags: [String: Bool]
    var samples: [Int]
}

enum EchoRecord: TypedTask {
    typealias Input = Record
    typealias Output = Record
    static let name = "typed-echo-record"
}

enum FailWith: TypedTask {
    typealias Input = String
    typealias Output = Int
    static let name = "typed-fail"
}

struct HangCounters: Codable, Sendable, Equatable {
    var started: Int
    var cancelled: Int
}

/// How many `Hang` calls started and were cancelled in this worker.
let typedCounters = Mutex(HangCounters(started: 0, cancelled: 0))

enum Hang: TypedTask {
    typealias Input = Int
    typealias Output = Int
    static let name = "typed-hang"
}

enum HangStats: TypedTask {
    typealias Input = HangCounters
    typealias Output = HangCounters
    static let name = "typed-hang-stats"
}

struct CrashyInput: Codable, Sendable {
    var value: Int
    var crashOnceMarker: String?
    var delayMilliseconds: Int
    /// Hangs until cancelled (or the worker is killed).
    var hang: Bool?
}

enum Crashy: TypedTask {
    typealias Input = CrashyInput
    typealias Output = Int
    static let name = "typed-crashy"
}

/// What `Flaky` throws the first time it sees its marker.
struct Transient: Error, CustomStringConvertible {
    var description: String { "transient failure" }
}

enum Flaky: TypedTask {
    typealias Input = CrashyInput
    typealias Output = Int
    static let name = "typed-flaky"
}

struct CountdownInput: Codable, Sendable {
    var from: Int
    var failAt: Int?
}

struct Tick: Codable, Sendable, Equatable {
    var n: Int
    var label: String
}

enum Countdown: StreamingTypedTask {
    typealias Input = CountdownInput
    typealias Output = Tick
    static let name = "typed-countdown"
}

enum Numbers: StreamingTypedTask {
    typealias Input = Int
    typealias Output = Int
    static let name = "typed-numbers"
}

/// How many `Ticker` calls started and were cancelled in this worker.
let streamCounters = Mutex(HangCounters(started: 0, cancelled: 0))

enum Ticker: StreamingTypedTask {
    /// Milliseconds between ticks.
    typealias Input = Int
    typealias Output = Int
    static let name = "typed-ticker"
}

enum TickerStats: TypedTask {
    typealias Input = HangCounters
    typealias Output = HangCounters
    static let name = "typed-ticker-stats"
}

/// Returns the request id its call (or chunk) ran under.
enum CallID: TypedTask {
    typealias Input = Int
    typealias Output = Int
    static let name = "typed-call-id"
}

/// `Square` and `Hang` again, registered on the worker's I/O thread.
enum SquareOnIO: TypedTask {
    typealias Input = Int
    typealias Output = Int
    static let name = "typed-square-io"
}

enum HangOnIO: TypedTask {
    typealias Input = Int
    typealias Output = Int
    static let name = "typed-hang-io"
}
