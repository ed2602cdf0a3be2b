// The typed tasks of the test worker, declared once: the test worker serves them and the
// integration tests call them (both depend on this target).

import Execnet

public enum Square: TypedTask {
    public typealias Input = Int
    public typealias Output = Int
    public static let name = "typed-square"
}

public struct Record: Codable, Sendable, Equatable {
    public enum Shape: Codable, Sendable, Equatable {
        case circle(radius: Double)
        case rectangle(width: Int, height: Int)
        case none
    }
    public struct Inner: Codable, Sendable, Equatable {
        public var label: String
        public var tags: [String]
        public var weight: Double?

        public init(label: String, tags: [String], weight: Double?) {
            self.label = label
            self.tags = tags
            self.weight = weight
        }
    }
    public var id: Int
    public var name: String?
    public var shape: Shape
    public var inner: Inner
    public var children: [Inner]
    public var timestamp: Double
    public var flags: [String: Bool]
    public var samples: [Int]

    public init(id: Int, name: String?, shape: Shape, inner: Inner, children: [Inner], timestamp: Double,
                flags: [String: Bool], samples: [Int]) {
        self.id = id
        self.name = name
        self.shape = shape
        self.inner = inner
        self.children = children
        self.timestamp = timestamp
        self.flags = flags
        self.samples = samples
    }
}

public enum EchoRecord: TypedTask {
    public typealias Input = Record
    public typealias Output = Record
    public static let name = "typed-echo-record"
}

public enum FailWith: TypedTask {
    public typealias Input = String
    public typealias Output = Int
    public static let name = "typed-fail"
}

public struct HangCounters: Codable, Sendable, Equatable {
    public var started: Int
    public var cancelled: Int

    public init(started: Int, cancelled: Int) {
        self.started = started
        self.cancelled = cancelled
    }
}

public enum Hang: TypedTask {
    public typealias Input = Int
    public typealias Output = Int
    public static let name = "typed-hang"
}

public enum HangStats: TypedTask {
    public typealias Input = HangCounters
    public typealias Output = HangCounters
    public static let name = "typed-hang-stats"
}

public struct CrashyInput: Codable, Sendable {
    public var value: Int
    public var crashOnceMarker: String?
    public var delayMilliseconds: Int

    public init(value: Int, crashOnceMarker: String? = nil, delayMilliseconds: Int = 0) {
        self.value = value
        self.crashOnceMarker = crashOnceMarker
        self.delayMilliseconds = delayMilliseconds
    }
}

public enum Crashy: TypedTask {
    public typealias Input = CrashyInput
    public typealias Output = Int
    public static let name = "typed-crashy"
}

/// Throws `Transient` the first time it sees its marker; the client retries that error.
public enum Flaky: TypedTask {
    public typealias Input = CrashyInput
    public typealias Output = Int
    public static let name = "typed-flaky"
    public static func isRetryable(_ error: RemoteTaskError) -> Bool { error.typeName.hasSuffix("Transient") }
}
