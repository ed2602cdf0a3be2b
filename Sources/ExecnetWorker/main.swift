// execnet-worker: the stock worker executable that popen gateways start. It offers the built-in
// tasks (echo, exec, info); build your own worker with WorkerMain and a TaskRegistry for more.

import ExecnetCore
import ExecnetValue
import ExecnetWorkerRuntime

WorkerMain.run(tasks: .builtins)
