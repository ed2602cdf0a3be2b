// The broker's credit ledger as a pure struct: an honest exchange passes, a lying receiver or
// sender is named, stale grants are dropped, and the bytes in flight are counted exactly.

import Execnet
@testable import ExecnetBrokerServer
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import Testing

@Suite struct FlowLedgerTests {
    let worker = PeerKey(Array("w.1".utf8))

    @Test func anHonestExchangePassesAndCountsBytesInFlight() {
        var ledger = FlowLedger(limits: BrokerLimits())
        for _ in 0..<FlowWindow.messages {
            #expect(ledger.data(worker: worker, 1, fromWorker: true, size: 10).0 == .forward)
        }
        #expect(ledger.inFlightBytes == 10 * FlowWindow.messages)
        // Half a window consumed, granted back; then the rest.
        #expect(ledger.credit(worker: worker, 1, fromWorker: false, messages: 512, bytes: 5120) == .forward)
        #expect(ledger.inFlightBytes == 10 * 512)
        #expect(ledger.credit(worker: worker, 1, fromWorker: false, messages: 512, bytes: 5120) == .forward)
        #expect(ledger.inFlightBytes == 0)
        // One larger message may go when nothing else is in flight, as the sender's own rule says.
        #expect(ledger.data(worker: worker, 1, fromWorker: true, size: FlowWindow.bytes + 1).0 == .forward)
        #expect(ledger.credit(worker: worker, 1, fromWorker: false, messages: 1, bytes: FlowWindow.bytes + 1) == .forward)
        let forgotten = ledger.close(worker: worker, 1, fromWorker: true)
        #expect(forgotten)
        #expect(ledger.channels.isEmpty && ledger.inFlightBytes == 0)
    }

    @Test func aGrantForMoreThanWasSentIsAViolation() {
        var ledger = FlowLedger(limits: BrokerLimits())
        _ = ledger.data(worker: worker, 1, fromWorker: true, size: 10)
        #expect(ledger.credit(worker: worker, 1, fromWorker: false, messages: 1, bytes: 10) == .forward)
        guard case .violation(let reason) = ledger.credit(worker: worker, 1, fromWorker: false, messages: 1, bytes: 0) else {
            Issue.record("a grant for nothing was accepted")
            return
        }
        #expect(reason.contains("granted credit"))
        // The other direction is counted apart: the worker owes the client nothing either.
        var other = FlowLedger(limits: BrokerLimits())
        _ = other.data(worker: worker, 3, fromWorker: true, size: 10)
        #expect(other.credit(worker: worker, 3, fromWorker: true, messages: 1, bytes: 10) != .forward)
    }

    @Test func sendingBeyondCreditOrAfterOwnCloseIsAViolation() {
        var ledger = FlowLedger(limits: BrokerLimits())
        for _ in 0..<FlowWindow.messages { _ = ledger.data(worker: worker, 1, fromWorker: false, size: 1) }
        #expect(ledger.data(worker: worker, 1, fromWorker: false, size: 1).0 != .forward)
        var bytes = FlowLedger(limits: BrokerLimits())
        #expect(bytes.data(worker: worker, 1, fromWorker: false, size: FlowWindow.bytes - 1).0 == .forward)
        #expect(bytes.data(worker: worker, 1, fromWorker: false, size: 2).0 != .forward)
        var closed = FlowLedger(limits: BrokerLimits())
        _ = closed.data(worker: worker, 1, fromWorker: false, size: 1)
        let forgottenByClient = closed.close(worker: worker, 1, fromWorker: false)
        #expect(!forgottenByClient)
        #expect(closed.data(worker: worker, 1, fromWorker: false, size: 1).0 != .forward)
        // The worker's items still in flight after the client's close are fine.
        #expect(closed.data(worker: worker, 1, fromWorker: true, size: 1).0 == .forward)
    }

    @Test func aGrantForAChannelNothingWasSentOnIsDropped() {
        var ledger = FlowLedger(limits: BrokerLimits())
        #expect(ledger.credit(worker: worker, 5, fromWorker: false, messages: 1_000_000_000, bytes: 1 << 36) == .drop)
        // Also after the worker closed it: the client's last grant is moot.
        _ = ledger.data(worker: worker, 7, fromWorker: true, size: 4)
        ledger.close(worker: worker, 7, fromWorker: true)
        #expect(ledger.credit(worker: worker, 7, fromWorker: false, messages: 1, bytes: 4) == .drop)
        #expect(ledger.channels.isEmpty)
    }

    @Test func channelsPerGatewayAreCappedAndAGoneWorkerIsForgotten() {
        var limits = BrokerLimits()
        limits.maxChannelsPerGateway = 3
        var ledger = FlowLedger(limits: limits)
        for id: Int32 in [1, 3, 5] {
            let created = ledger.data(worker: worker, id, fromWorker: false, size: 100).created
            #expect(created)
        }
        #expect(ledger.data(worker: worker, 7, fromWorker: false, size: 1).0 != .forward)
        #expect(ledger.data(worker: PeerKey([9]), 7, fromWorker: false, size: 1).0 == .forward)
        ledger.removeWorker(worker)
        #expect(ledger.channels.count == 1 && ledger.inFlightBytes == 1)
        #expect(ledger.workersWithChannels == [PeerKey([9])])
    }

    @Test func creditPayloadsAreParsedStrictly() {
        let parsed = Broker.parseCredit(encodePlain(.tuple([.int(512), .int(4096)])))
        #expect(parsed?.0 == 512 && parsed?.1 == 4096)
        #expect(Broker.parseCredit(encodePlain(.tuple([.int(-1), .int(0)]))) == nil)
        #expect(Broker.parseCredit(encodePlain(.tuple([.int(Int64.max), .int(0)]))) == nil)
        #expect(Broker.parseCredit(encodePlain(.list([.int(1), .int(1)]))) == nil)
        #expect(Broker.parseCredit([0xff, 0x00]) == nil)
    }
}

/// The receiver's side of a drain grant (ChannelState).
@Suite struct DrainGrantTests {
    @Test func aWaiterForTheCloseGrantsQueuedAndArrivingItemsOnceEach() {
        var state = ChannelState()
        for _ in 0..<FlowWindow.messages { state.items.append([1, 2]) }
        // A full window queued: the drain grants all of it back (two half-window grants).
        let grant = state.startDrain()
        #expect(grant?.messages == FlowWindow.messages && grant?.bytes == 2 * FlowWindow.messages)
        #expect(state.aheadMessages == FlowWindow.messages)
        // Arrivals are granted as they come, in half-window batches.
        var granted = 0
        for _ in 0..<FlowWindow.messages { granted += state.drainArrival(bytes: 2)?.messages ?? 0 }
        #expect(granted == FlowWindow.messages)
        // Taking the items grants nothing more: each item is granted once.
        for _ in 0..<(2 * FlowWindow.messages) { #expect(state.consume(bytes: 2) == nil) }
        #expect(state.aheadMessages == 0 && state.aheadBytes == 0)
        // Afterwards, consumption grants as usual.
        var later = 0
        for _ in 0..<FlowWindow.messages { later += state.consume(bytes: 2)?.messages ?? 0 }
        #expect(later == FlowWindow.messages)
    }

    @Test func theDrainStopsAtItsCapAndWithoutAWaiter() {
        var state = ChannelState()
        state.draining = true
        let big = FlowWindow.drainBytes / 4
        for _ in 0..<8 { _ = state.drainArrival(bytes: big) }
        #expect(state.aheadMessages == 3)
        #expect(state.aheadBytes <= FlowWindow.drainBytes)
        state.stopDrainIfUnwatched()
        #expect(!state.draining)
        #expect(state.drainArrival(bytes: 1) == nil)
        // A channel that ended, or has a callback, does not drain.
        var ended = ChannelState()
        ended.remoteClosed = true
        ended.items.append([1])
        #expect(ended.startDrain() == nil && !ended.draining)
    }
}
