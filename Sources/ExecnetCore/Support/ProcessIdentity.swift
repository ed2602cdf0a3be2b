// Who and where this process is: pid, working directory, host name, executable and platform.
// A worker's hello and the `info` task report it; agents and clients name their host with it.

#if canImport(Glibc)
import ExecnetValue
import Glibc
#endif

/// This process's identity, read when asked.
package struct ProcessIdentity: Sendable {
    package let pid: Int64
    package let cwd: String
    package let hostname: String
    package let executable: String
    package let platform: String

    /// Reads the current process's identity.
    package static func current() -> ProcessIdentity {
        var cwdBuffer = [CChar](repeating: 0, count: 4096)
        let cwd = getcwd(&cwdBuffer, cwdBuffer.count) != nil ? cString(cwdBuffer) : ""
        var info = utsname()
        uname(&info)
        let machine = withUnsafeBytes(of: info.machine) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return ProcessIdentity(pid: Int64(getpid()), cwd: cwd, hostname: hostName(),
                               executable: WorkerProcess.currentExecutable(), platform: "linux-\(machine)")
    }

    /// The identity as the dict fields `pid`, `cwd`, `hostname`, `executable`, `platform`.
    package var fields: [(String, Value)] {
        [("pid", .int(pid)), ("cwd", .string(cwd)), ("hostname", .string(hostname)),
         ("executable", .string(executable)), ("platform", .string(platform))]
    }
}

/// This machine's host name.
package func hostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    gethostname(&buffer, buffer.count - 1)
    return cString(buffer)
}
