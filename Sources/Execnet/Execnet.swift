// The umbrella module: `import Execnet` gives a program the value format, the core (channels,
// errors, settings), the client (Group, Gateway, MultiChannel) and the worker runtime. The broker
// server and the host agent are libraries of their own (ExecnetBrokerServer, ExecnetHostAgent).

@_exported import ExecnetClient
@_exported import ExecnetCore
@_exported import ExecnetValue
@_exported import ExecnetWorkerRuntime
