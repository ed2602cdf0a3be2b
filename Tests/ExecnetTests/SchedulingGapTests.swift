// A side that was not running for a liveness window starts its counts afresh instead of taking
// its own silence for the peer's.

import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import Testing

@Suite struct SchedulingGapTests {
    @Test func onlyAGapLongerThanTheWindowCounts() {
        var gap = SchedulingGap()
        let start = ContinuousClock.now
        // Turns at 0, 0.5 s, 3.5 s, then a 10 s gap (stopped), then 0.5 s later.
        let offsets = [0, 500, 3_500, 13_500, 14_000]
        let missed = offsets.map { gap.missed(.seconds(3), now: start.advanced(by: .milliseconds($0))) }
        #expect(missed == [nil, nil, nil, .seconds(10), nil])
    }
}
