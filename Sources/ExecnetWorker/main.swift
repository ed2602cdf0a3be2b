// execnet-worker: the stock worker executable that popen gateways start. It offers the built-in
// tasks (echo, exec, info, and execnet.rsync, which every worker has); build your own worker with WorkerMain and a TaskRegistry for more.

import ExecnetCore
import ExecnetValue
import ExecnetWorkerRuntime
#if canImport(Glibc)
import Glibc
#endif

// The one option a person may give it (gateways start it with environment variables, no arguments).
if CommandLine.arguments.dropFirst().first == "--version" {
    print(execnetVersionText)
    exit(0)
}
WorkerMain.run(tasks: .builtins)
