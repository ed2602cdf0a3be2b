// Logging what a broken or hostile peer sends, at a bounded rate: the first frame of a kind in an
// interval is logged with its details, the rest of that interval only counted, and one line at the
// interval's end says how many more there were. A flood of 60,000 rogue frames gives a handful of
// lines instead of one (hex dump) per frame. Used by the hub, the worker and the broker.

import Logging
import Synchronization

/// A logger for dropped peer input that logs each kind at most once per interval, with counts.
///
/// Safe from any thread. The summary of an interval is logged by a timer on the I/O thread whose
/// queue is given (or on the fallback timer thread).
package final class RateLimitedLogger: Sendable {
    private struct Window {
        /// When this interval ends (its summary is due).
        let until: ContinuousClock.Instant
        /// Occurrences after the first, not logged yet.
        var suppressed = 0
    }

    package let logger: Logger
    /// How long one interval lasts.
    package let interval: Duration
    private let timers: TimerQueue?
    private let windows = Mutex<[String: Window]>([:])

    /// Creates a rate-limited logger.
    ///
    /// - Parameters:
    ///   - logger: Where the lines go.
    ///   - interval: At most one detailed line and one summary per kind per interval (default 10 s).
    ///   - timers: The I/O thread's timers, for the summaries; `nil` uses the fallback thread.
    package init(logger: Logger, interval: Duration = .seconds(10), timers: TimerQueue?) {
        self.logger = logger
        self.interval = interval
        self.timers = timers
    }

    /// Logs a warning of `kind` (a fixed phrase, such as "dropped a message from an unknown peer"),
    /// with `detail` only if it is the first of its kind in the current interval.
    package func warning(_ kind: String, _ detail: @autoclosure () -> String) {
        let now = ContinuousClock.now
        let until = now.advanced(by: interval)
        // Whether this one is shown, and the count of an interval that ended before its summary ran.
        let (first, ended) = windows.withLock { windows -> (Bool, Int) in
            var ended = 0
            if var window = windows[kind] {
                if now < window.until {
                    window.suppressed += 1
                    windows[kind] = window
                    return (false, 0)
                }
                ended = window.suppressed
            }
            windows[kind] = Window(until: until)
            return (true, ended)
        }
        guard first else { return }
        if ended > 0 { logger.warning("\(kind): \(ended) more in the last \(interval)") }
        logger.warning("\(kind): \(detail()) (more of these in the next \(interval) are counted, not shown)")
        _ = TimerQueue.startWait(until, on: timers) { [self] in summarize(kind, until: until) }
    }

    /// Ends the interval of `kind` that ends at `until`: logs how many were not shown.
    private func summarize(_ kind: String, until: ContinuousClock.Instant) {
        let suppressed = windows.withLock { windows -> Int in
            guard let window = windows[kind], window.until == until else { return 0 }
            windows[kind] = nil
            return window.suppressed
        }
        guard suppressed > 0 else { return }
        logger.warning("\(kind): \(suppressed) more in the last \(interval)")
    }
}
