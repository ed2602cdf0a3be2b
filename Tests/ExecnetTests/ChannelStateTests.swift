// The channel state machine's pure parts: credit accounting, grants, the once-only remote error and
// what counts as closed. No processes, no sockets.

import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import Testing

@Suite struct ChannelStateTests {
    @Test func creditRunsOutAfterAWindowOfMessages() {
        var state = ChannelState()
        for _ in 0..<FlowWindow.messages {
            #expect(state.hasCredit(for: 10))
            state.takeCredit(10)
        }
        #expect(!state.hasCredit(for: 10))
    }

    @Test func aMessageLargerThanTheByteWindowGoesWhenNothingIsInFlight() {
        var state = ChannelState()
        let huge = FlowWindow.bytes * 2
        #expect(state.hasCredit(for: huge))
        state.takeCredit(huge)
        #expect(!state.hasCredit(for: 1))
        _ = state.grant(messages: 1, bytes: huge)
        #expect(state.hasCredit(for: 1))
    }

    /// The receiver's side of the window: what an honest sender can have in flight passes, one
    /// message more (or a byte window overrun while something is in flight) is a lie.
    @Test func theReceiverRefusesItemsBeyondTheWindowItGranted() {
        var state = ChannelState()
        for _ in 0..<FlowWindow.messages { do { let ok = state.noteArrival(bytes: 10); #expect(ok) } }
        do { let ok = state.noteArrival(bytes: 10); #expect(!ok) }

        var granted = ChannelState()
        for _ in 0..<FlowWindow.messages { do { let ok = granted.noteArrival(bytes: 10); #expect(ok) } }
        var grants = 0
        for _ in 0..<FlowWindow.messages where granted.consume(bytes: 10) != nil { grants += 1 }
        #expect(grants == 2)
        // Everything was granted back: a whole window may come again.
        for _ in 0..<FlowWindow.messages { do { let ok = granted.noteArrival(bytes: 10); #expect(ok) } }

        var bytes = ChannelState()
        do { let ok = bytes.noteArrival(bytes: FlowWindow.bytes * 2); #expect(ok) }  // alone in flight: allowed
        var small = ChannelState()
        do { let ok = small.noteArrival(bytes: 1); #expect(ok) }
        do { let ok = small.noteArrival(bytes: FlowWindow.bytes - 1); #expect(ok) }
        do { let ok = small.noteArrival(bytes: 1); #expect(!ok) }
    }

    @Test func consumptionGrantsCreditAtHalfAWindow() {
        var state = ChannelState()
        var grants: [(messages: Int, bytes: Int)] = []
        for _ in 0..<FlowWindow.messages {
            if let grant = state.consume(bytes: 3) { grants.append(grant) }
        }
        #expect(grants.count == 2)
        #expect(grants.allSatisfy { $0.messages == FlowWindow.messages / 2 && $0.bytes == 3 * FlowWindow.messages / 2 })
    }

    @Test func theRemoteErrorIsReportedOnceThenEndOfChannel() {
        var state = ChannelState()
        state.remoteClosed = true
        state.pendingError = RemoteError("boom")
        guard case .remoteError(let error) = state.takeEnd() else {
            Issue.record("expected the remote error first")
            return
        }
        #expect(error.text == "boom")
        guard case .endOfChannel = state.takeEnd() else {
            Issue.record("expected end of channel after the error")
            return
        }
    }

    @Test func withACallbackTheChannelIsClosedOnlyAfterTheEndmarkerStep() {
        var state = ChannelState()
        state.callback = CallbackRegistration(callback: { _ in }, endmarker: nil)
        state.remoteClosed = true
        #expect(!state.isClosed)
        state.callbackDrained = true
        #expect(state.isClosed)
        var local = ChannelState()
        local.localClosed = true
        #expect(local.isClosed && local.isEnded)
    }
}
