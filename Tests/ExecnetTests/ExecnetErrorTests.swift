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
}
