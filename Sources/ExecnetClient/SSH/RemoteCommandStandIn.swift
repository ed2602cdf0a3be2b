// TEMPORARY stand-in until h14-bundle's WorkerBundle.swift is merged (same declarations); removed then.

package struct RemoteCommandResult: Sendable {
    package var status: Int32
    package var stdout: [UInt8]
    package var stderr: [UInt8]

    package init(status: Int32, stdout: [UInt8], stderr: [UInt8]) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }
}

package protocol RemoteCommandRunner: Sendable {
    func run(script: String, input: [UInt8]) async throws -> RemoteCommandResult
}
