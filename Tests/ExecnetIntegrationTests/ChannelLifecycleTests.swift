// Channel lifecycles against real workers: each side closes once and forgets a channel once both
// have closed, so finished tasks cost nothing on either side; channels made by a task reach the
// client inside values, and come back as the same object.

import Execnet
import Synchronization
import Testing

extension ProcessTests {
    @Suite struct ChannelLifecycleTests {
        @Test(arguments: GatewayKind.allCases) func finishedTasksLeaveNoChannelOnEitherSide(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let gateway = group[0]
                let workerBaseline = try await gateway.remoteStatus().channelCount
                // Zero, not a reading: the status channel just used may still be registered for a
                // moment (its close reached the waiter first), and a reading then would be 1.
                let clientBaseline = 0
                for index in 0..<60 {
                    let channel = try gateway.remoteExec("send", .int(Int64(index)))
                    #expect(try await channel.receive(timeout: .seconds(10)) == .int(Int64(index)))
                    try await channel.waitClose(timeout: .seconds(10))
                }
                // Tasks whose channel the client closes while they still wait.
                for _ in 0..<20 {
                    let channel = try gateway.remoteExec("wait-release")
                    try channel.close()
                }
                // The client forgets a channel when the worker's close arrives.
                try await eventually { gateway.channelCount == clientBaseline }
                #expect(gateway.channelCount == clientBaseline)
                // The worker forgets it when the client's close arrives, which went before this STATUS.
                let status = try await gateway.remoteStatus()
                #expect(status.channelCount == workerBaseline)
                #expect(status.executingCount == 0)
            }
        }

        @Test(arguments: GatewayKind.allCases) func aTaskAbandonedByExitEndsItsChannelAsTerminated(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let waiting = try group[0].remoteExec("wait-release")
                let plain = try group[0].remoteExec("send", 1)
                try await plain.waitClose(timeout: .seconds(10))
                group[0].exit()
                // Not a clean close and not a RemoteError: the end of the channel, with the cause.
                for attempt in 0..<2 {
                    do {
                        _ = try await waiting.receive(timeout: .seconds(10))
                        Issue.record("expected endOfChannel (attempt \(attempt))")
                    } catch let error as ExecnetError {
                        #expect(error.code == .endOfChannel)
                        #expect(error.peerEnd?.reason.contains("terminated") == true)
                    }
                }
                await expectExecnetError(.endOfChannel) { try await waiting.waitClose(timeout: .seconds(5)) }
                // A channel that had closed before stays a clean close.
                try await plain.waitClose(timeout: .seconds(1))
                #expect(try await plain.receive(timeout: .seconds(1)) == 1)
            }
        }

        @Test func aDeadWorkersChannelsCarryItsExitAndLastStderrLines() async throws {
            try await withTestGroup(1, kind: .popen) { group in
                let channel = try group[0].remoteExec("stderr-then-exit", 3)
                do {
                    _ = try await channel.receive(timeout: .seconds(10))
                    Issue.record("expected endOfChannel")
                } catch let error as ExecnetError {
                    #expect(error.code == .endOfChannel)
                    let cause = try #require(error.peerEnd)
                    #expect(cause.exit == .exited(3))
                    #expect(cause.stderr.suffix(2) == ["first words", "last words"])
                    #expect(cause.gatewayID == group[0].id)
                }
            }
        }

        @Test(arguments: GatewayKind.allCases) func hasReceiverIsTrueUntilEitherSideLetsGo(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let live = try group[0].remoteExec("wait-release")
                #expect(live.hasReceiver)
                let finished = try group[0].remoteExec("send", 1)
                try await finished.waitClose(timeout: .seconds(10))
                #expect(!finished.hasReceiver)
                // A channel the task opened and sent: the task holds it open, so it receives.
                let maker = try group[0].remoteExec("channel-comes-back")
                guard case .channel(let side) = try await maker.receive(timeout: .seconds(10)) else {
                    Issue.record("expected a channel")
                    return
                }
                #expect(side.hasReceiver)
                try live.close()
                #expect(!live.hasReceiver)
                try await side.send("x")
                try await maker.send(.channel(side))
                _ = try await maker.receive(timeout: .seconds(10))
            }
        }

        @Test(arguments: GatewayKind.allCases) func aTaskSendsAChannelItOpenedAndTheClientReceivesOnIt(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let channel = try group[0].remoteExec("make-channel", 1, "two", 3)
                guard case .channel(let side) = try await channel.receive(timeout: .seconds(10)) else {
                    Issue.record("expected a channel")
                    return
                }
                #expect(side.id % 2 == 0)
                #expect(side.gatewayID == group[0].id)
                var items: [Value] = []
                for try await item in side { items.append(item) }
                #expect(items == [1, "two", 3])
                try await channel.waitClose(timeout: .seconds(10))
                try await eventually { group[0].channelCount == 0 }
                #expect(group[0].channelCount == 0)
            }
        }

        @Test(arguments: GatewayKind.allCases) func aWorkerChannelThatComesBackIsTheSameObjectThere(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let channel = try group[0].remoteExec("channel-comes-back")
                guard case .channel(let side) = try await channel.receive(timeout: .seconds(10)) else {
                    Issue.record("expected a channel")
                    return
                }
                try await side.send("hi")
                try await channel.send(.channel(side))
                #expect(try await channel.receive(timeout: .seconds(10)) == .tuple([true, .int(Int64(side.id)), "hi"]))
            }
        }

        @Test(arguments: GatewayKind.allCases) func aClientChannelThatComesBackIsTheSameObject(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let mine = group[0].newChannel()
                #expect(mine.id % 2 == 1)
                let channel = try group[0].remoteExec("return-channel")
                try await channel.send(.channel(mine))
                guard case .channel(let back) = try await channel.receive(timeout: .seconds(10)) else {
                    Issue.record("expected a channel")
                    return
                }
                #expect(back === mine)
            }
        }
    }
}

extension ProcessTests {
    /// A channel still open that its side no longer references closes itself (execnet's
    /// `Channel.__del__`), on both sides; a callback or a receive queue holds its channel.
    @Suite struct ChannelAutoCloseTests {
        @Test(arguments: GatewayKind.allCases) func aProducerTaskThatDropsItsChannelEndsTheClientsWaitClose(kind: GatewayKind) async throws {
            try await droppedSideChannelEndsWaitClose("drop-side-channel", kind: kind)
        }

        @Test(arguments: GatewayKind.allCases) func aProducerThreadThatDropsItsChannelEndsTheClientsWaitClose(kind: GatewayKind) async throws {
            try await droppedSideChannelEndsWaitClose("drop-side-channel-thread", kind: kind)
        }

        private func droppedSideChannelEndsWaitClose(_ task: String, kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let channel = try group[0].remoteExec(task, 1, "two", 3)
                guard case .channel(let side) = try await channel.receive(timeout: .seconds(10)) else {
                    Issue.record("expected a channel")
                    return
                }
                // A clean close: no error, no cause; the items sent before it stay receivable.
                try await side.waitClose(timeout: .seconds(10))
                var items: [Value] = []
                for try await item in side { items.append(item) }
                #expect(items == [1, "two", 3])
                // The task still runs (it waits for an item): the drop, not its end, closed the channel.
                #expect(channel.hasReceiver)
                try await channel.send("done")
                try await channel.waitClose(timeout: .seconds(10))
            }
        }

        @Test(arguments: GatewayKind.allCases) func aClientThatDropsARunningTasksChannelEndsTheTasksReceive(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let report = group[0].newChannel()
                do {
                    let channel = try group[0].remoteExec("report-end", .channel(report))
                    try await channel.send(1)
                }
                // The task's receive ends with the end of the channel (not a remote error).
                let ending = try await report.receive(timeout: .seconds(10))
                guard case .tuple(let parts) = ending, parts.count == 2, case .string(let text) = parts[1] else {
                    Issue.record("unexpected report \(ending)")
                    return
                }
                #expect(parts[0] == "other")
                #expect(text.contains("ended"), "\(text)")
            }
        }

        @Test(arguments: GatewayKind.allCases) func aChannelWithACallbackIsNotClosedByDroppingTheUsersReference(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let control = group[0].newChannel()
                let received = Mutex<[Value]>([])
                do {
                    let channel = try group[0].remoteExec("relay", .channel(control))
                    try channel.setCallback({ value in received.withLock { $0.append(value) } }, endmarker: "end")
                }
                // The task sends only after the user let go: it can only if the channel is open.
                try await control.send(1)
                try await waitFor { received.withLock { $0 } == [1] }
                try await control.send(2)
                try await waitFor { received.withLock { $0 } == [1, 2] }
                try control.close()
                try await waitFor { received.withLock { $0 } == [1, 2, "end"] }
                #expect(received.withLock { $0 } == [1, 2, "end"])
            }
        }

        @Test(arguments: GatewayKind.allCases) func aChannelInAReceiveQueueIsNotClosedByDroppingTheUsersReference(kind: GatewayKind) async throws {
            try await withTestGroup(1, kind: kind) { group in
                let control = group[0].newChannel()
                let queue: ReceiveQueue
                do {
                    let channel = try group[0].remoteExec("relay", .channel(control))
                    queue = try MultiChannel([channel]).makeReceiveQueue(endmarker: "end")
                }
                try await control.send("after")
                #expect(try await queue.get(timeout: .seconds(10)).1 == "after")
                try control.close()
                #expect(try await queue.get(timeout: .seconds(10)).1 == "end")
            }
        }
    }
}

/// Waits (with a bound of 10 s) until `condition` holds.
private func waitFor(_ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now.advanced(by: .seconds(10))
    while !condition() && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
}
