// execnet-examples: execnet's documented examples, ported line by line, each Python line above
// its Swift. "Compare current working directories" and "Sending channels over channels" are from
// execnet's doc/example/test_info.rst; "redirect output" is doc/example/redirect_remote_output.py
// (a channel sent over a channel, a channel as a file, a callback). The remote halves are the
// tasks in RemoteTasks.swift; this program is their worker (`worker=self`).

import Execnet
#if canImport(Glibc)
import Glibc
#endif

WorkerMain.runIfWorkerProcess(tasks: exampleTasks())
// execnet.makegateway() makes a popen gateway running this program.
try defaultGatewayGroup().defaultSpec = "popen//worker=self"

// MARK: - Compare current working directories

do {
    // gw = execnet.makegateway()
    let gw = try await makeGateway()
    // ch = gw.remote_exec("import os; channel.send(os.getcwd())")
    let ch = try gw.remoteExec("send-cwd")
    // res = ch.receive()
    let res = try await ch.receive()
    // assert res == os.getcwd()
    precondition(res == .string(currentDirectory()))
    print("remote cwd:", res, "== local cwd")
}

// MARK: - Sending channels over channels

do {
    // gw = execnet.makegateway()
    let gw = try await makeGateway()
    // channel = gw.remote_exec("""
    //        ch1, ch2 = channel.receive()
    //        ch2.send("world")
    //        ch1.send("hello")
    // """)
    let channel = try gw.remoteExec("send-hello-world")
    // c1 = gw.newchannel()    # create new channel
    let c1 = gw.newChannel()
    // c2 = gw.newchannel()    # create another channel
    let c2 = gw.newChannel()
    // channel.send((c1, c2))  # send them over
    try await channel.send(.tuple([.channel(c1), .channel(c2)]))
    // c1.receive()  ->  'hello'
    print("c1:", try await c1.receive())
    // c2.receive()  ->  'world'
    print("c2:", try await c2.receive())
}

// MARK: - Redirect output from remote to a local function

do {
    // gw = execnet.makegateway()
    let gw = try await makeGateway()
    // outchan = gw.remote_exec("""
    //     import sys
    //     outchan = channel.gateway.newchannel()
    //     sys.stdout = outchan.makefile("w")
    //     channel.send(outchan)
    // """).receive()
    guard case .channel(let outchan) = try await gw.remoteExec("redirect-stdout").receive() else {
        fatalError("the task sends its output channel")
    }

    // # note: callbacks execute in receiver thread!
    // def write(data):
    //     print("received:", repr(data))
    @Sendable func write(_ data: Value) {
        print("received:", data)
    }

    // outchan.setcallback(write)
    try outchan.setCallback(write)

    // gw.remote_exec("""
    //     print('hello world')
    //     print('remote execution ends')
    // """).waitclose()
    try await gw.remoteExec("print-hello").waitClose()

    // (Python's interpreter waits for its receiver thread at exit; here the remote stdout is
    // closed and the channel's close awaited, so every callback has run before the program ends.)
    try await gw.remoteExec("close-stdout").waitClose()
    try await outchan.waitClose(timeout: .seconds(10))
}

await (try defaultGatewayGroup()).terminate(timeout: .seconds(5))
