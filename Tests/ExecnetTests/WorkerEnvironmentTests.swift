// The rule for the environment variables a client may give a worker, and how a worker's
// environment is put together (the integration tests run it through real agents and popen).

import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import Testing

@Suite struct WorkerEnvironmentTests {
    @Test(arguments: [
        "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "EXECNET_ENDPOINT", "EXECNET_EXEC_DISABLED", "EXECNET_",
        "MALLOC_CHECK_", "GLIBC_TUNABLES", "GCONV_PATH", "LOCPATH", "NLSPATH", "HOSTALIASES", "RES_OPTIONS",
        "TMPDIR", "BASH_ENV", "ENV", "PATH", "IFS", "SWIFT_BACKTRACE", "PYTHONPATH", "NODE_OPTIONS",
        "", "1ABC", "A-B", "BASH_FUNC_ls%%", "A=B", "A\u{0}B", "É",
    ])
    func refusedNames(name: String) {
        let refusal = WorkerEnvironment.refusal(forClientVariable: name)
        #expect(refusal != nil)
        #expect(refusal?.description.contains("environment variable \(name) is refused") == true)
    }

    @Test(arguments: ["MODE", "TEST_MODE", "_private", "a1", "HOME", "LANG", "LC_ALL", "API_TOKEN", "execnet_x", "ld_preload_note"])
    func allowedNames(name: String) {
        #expect(WorkerEnvironment.refusal(forClientVariable: name) == nil)
    }

    @Test func theSpawnersOwnValuesWinAndInheritedExecnetNamesAreDropped() throws {
        let built = try WorkerEnvironment.build(
            inherited: ["HOME=/root", "MODE=inherited", "EXECNET_ENDPOINT=ipc:///old", "EXECNET_CURVE_SECRET_KEY=secret",
                        "EXECNET_DEBUG=1", "EXECNET_WORKER=/bin/w", "EXECNET_EXEC_DISABLED=1", "EXECNET_CHDIR=/old"],
            client: [("MODE", "first"), ("OTHER", "x"), ("MODE", "last")],
            own: ["EXECNET_ENDPOINT=ipc:///new", "EXECNET_EXEC_DISABLED=0"])
        #expect(built == [
            "HOME=/root", "EXECNET_DEBUG=1", "EXECNET_WORKER=/bin/w", "MODE=last", "OTHER=x",
            "EXECNET_ENDPOINT=ipc:///new", "EXECNET_EXEC_DISABLED=0",
        ])
    }

    @Test func theFirstRefusedVariableFailsTheWholeEnvironment() {
        do {
            _ = try WorkerEnvironment.build(inherited: [], client: [("OK", "1"), ("LD_PRELOAD", "/x.so"), ("PATH", "/x")],
                                            own: [])
            Issue.record("LD_PRELOAD was accepted")
        } catch {
            #expect(error.name == "LD_PRELOAD")
        }
    }
}
