// Errors compare by code only and print what matters.

import Execnet
import Testing

@Suite struct ExecnetErrorTests {
    @Test func errorsCompareByCodeOnly() {
        #expect(ExecnetError(.timeout, "a") == ExecnetError(.timeout, "b", gatewayID: "gw1"))
        #expect(ExecnetError(.timeout, "a") != ExecnetError(.endOfChannel, "a"))
    }

    @Test func descriptionsNameTheGatewayChannelAndCause() {
        let error = ExecnetError(.workerDied, "gone", gatewayID: "gw2", channelID: 5)
        #expect("\(error)" == "ExecnetError.workerDied: gone [gateway gw2] [channel 5]")
        let remote = RemoteError("boom", taskName: "t", gatewayID: "gw0", exit: .signaled(9))
        #expect("\(remote)" == "RemoteError on gw0 in task 't': boom")
        #expect("\(WorkerExit.signaled(9))" == "killed by signal 9 (SIGKILL)")
        #expect("\(WorkerExit.exited(3))" == "exited with status 3")
    }

    @Test func aRemoteErrorGivesTheRemoteTextFormatted() {
        let remote = RemoteError("ValueError: bad\n  at line 3", taskName: "t", gatewayID: "gw0")
        #expect(remote.formatted == "ValueError: bad\n  at line 3")
    }

    @Test func theEndOfAChannelWhosePeerWentAwayCarriesTheCause() {
        let cause = PeerEnd("worker of gateway gw0 exited with status 3", gatewayID: "gw0", exit: .exited(3),
                            stderr: ["oops"])
        let error = ExecnetError(.endOfChannel, "channel 1 has ended", gatewayID: "gw0", channelID: 1, cause: cause)
        #expect(error.peerEnd == cause)
        #expect(ExecnetError(.endOfChannel, "plain").peerEnd == nil)
        #expect("\(cause)" == "worker of gateway gw0 exited with status 3; last stderr lines: oops")
    }
}
