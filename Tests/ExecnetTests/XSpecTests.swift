// XSpec parsing: execnet's rules and this port's keys and refusals.

import Execnet
@testable import ExecnetClient
@testable import ExecnetCore
@testable import ExecnetValue
@testable import ExecnetWorkerRuntime
import Testing
import ZeroMQ

@Suite struct XSpecTests {
    @Test func parsesEveryKey() throws {
        let spec = try XSpec("popen//id=w1//chdir=/tmp/x//nice=5//env:A=1//env:B=x=y//worker=/bin/w")
        #expect(spec.type == "popen")
        #expect(spec.id == "w1")
        #expect(spec.chdir == "/tmp/x")
        #expect(spec.nice == 5)
        #expect(Array(spec.environment.keys) == ["A", "B"])
        #expect(spec.environment["B"] == "x=y")
        #expect(spec.worker == "/bin/w")
        #expect("\(spec)" == "popen//id=w1//chdir=/tmp/x//nice=5//env:A=1//env:B=x=y//worker=/bin/w")
    }

    @Test func brokerSpecsKeepTheirEndpoint() throws {
        let spec = try XSpec("broker=tcp://10.0.0.1:5555//host=h1//serverkey=/k/b.pub//secretkey=/k/c.key//id=x")
        #expect(spec.type == "broker" && spec.broker == "tcp://10.0.0.1:5555" && spec.host == "h1")
        #expect(spec.serverKeyFile == "/k/b.pub" && spec.secretKeyFile == "/k/c.key" && spec.id == "x")
        #expect(try XSpec("broker=example.org:5555").broker == "tcp://example.org:5555")
        #expect(try XSpec("broker=ipc:///tmp/b//worker=/w").broker == "ipc:///tmp/b")
    }

    @Test func bareKeyMeansTrueAndPopenIsTheType() throws {
        let spec = try XSpec("popen")
        #expect(spec.type == "popen" && spec.id == nil && spec.environment.isEmpty)
    }

    @Test(arguments: [
        "", "popen//", "popen//id=a//id=b", "popen//_private=1", "popen=1", "popen//nice=fast",
        "ssh=", "ssh", "ssh=-v", "popen//ssh_config=/x", "ssh=h//ssh_reuse=0", "ssh=h//ssh_reuse=",
        "ssh=h//host=h1", "ssh=h//popen", "socket=127.0.0.1:8888", "vagrant_ssh=box", "lxc",
        "id=x", "popen//popen", "popen//=x", "popen//env:=1", "popen//chdir=",
        "popen//host=h1", "broker=tcp://h:1//popen", "broker=tcp://h:1//serverkey=/k", "broker=", "broker=nohostport",
    ])
    func rejectsInvalidSpecs(_ text: String) {
        #expect(throws: ExecnetError(.invalidSpec, "")) { try XSpec(text) }
    }

    @Test func unknownKeysAreKeptAndEveryKeyIsReadable() throws {
        // execnet keeps keys it does not know (plugins read their own) and reads any key as an
        // attribute: True for a bare key, the text for key=value, None for a key not given.
        let spec = try XSpec("popen//hello=world//verbose//id=w1//env:A=1//nice=3//execmodel=thread")
        #expect(spec["hello"] == .string("world"))
        #expect(spec["verbose"] == .bool(true))
        #expect(spec["popen"] == .bool(true))
        #expect(spec["id"] == .string("w1") && spec.id == "w1")
        #expect(spec["env:A"] == .string("1"))
        #expect(spec["nice"] == .string("3") && spec.nice == 3)
        #expect(spec["execmodel"] == .string("thread"))
        #expect(spec["missing"] == nil)
        #expect(spec.keys == ["popen", "hello", "verbose", "id", "env:A", "nice", "execmodel"])
        #expect("\(spec)" == "popen//hello=world//verbose//id=w1//env:A=1//nice=3//execmodel=thread")
        let broker = try XSpec("broker=tcp://h:5555//plugin=x=y")
        #expect(broker["plugin"] == .string("x=y") && broker["broker"] == .string("tcp://h:5555"))
        // Unknown keys still obey execnet's rules.
        #expect(throws: ExecnetError(.invalidSpec, "")) { try XSpec("popen//hello=1//hello=2") }
        #expect(throws: ExecnetError(.invalidSpec, "")) { try XSpec("popen//_hello=1") }
    }

    @Test func theKindIsDecidedWhenParsed() throws {
        #expect(try XSpec("popen//id=w1").kind == .popen)
        let spec = try XSpec("broker=h:5555//serverkey=/k/b.pub//secretkey=/k/c.key")
        #expect(spec.kind == .broker(BrokerBinding(endpoint: "tcp://h:5555", serverKeyFile: "/k/b.pub", secretKeyFile: "/k/c.key")))
        #expect(spec.type == "broker" && spec.broker == "tcp://h:5555")
    }

    @Test func aGroupsBrokerIsTakenAsGivenNotReadBackFromText() throws {
        // Key files whose names hold `//` (and one that looks like another key): the group's specs
        // carry them as given, because the default spec is made from the binding, not from its text.
        let binding = BrokerBinding(endpoint: "tcp://h:5555", serverKeyFile: "/keys//b.pub",
                                    secretKeyFile: "/keys/c.key//secretkey=/other")
        let group = try Group(broker: binding)
        let spec = try group.resolve("id=w1//host=h2")
        #expect(spec.kind == .broker(binding))
        #expect(spec.serverKeyFile == "/keys//b.pub" && spec.secretKeyFile == "/keys/c.key//secretkey=/other")
        #expect(spec.id == "w1" && spec.host == "h2")
        #expect(spec.text == group.defaultSpec + "//id=w1//host=h2")
        #expect(try group.resolve("").kind == .broker(binding))
        // A spec that names its type keeps it; one that names none may not repeat a default key.
        #expect(try group.resolve("popen//id=w2").kind == .popen)
        #expect(throws: ExecnetError(.invalidSpec, "")) { try group.resolve("host=a//host=b") }
        #expect(throws: ExecnetError(.invalidSpec, "")) { try group.resolve("serverkey=/k") }
    }

    @Test func aSpecNamingNoTypeGetsTheDefaultSpecsParts() throws {
        let group = try Group()
        group.defaultSpec = "popen//chdir=/tmp//env:A=1"
        let spec = try group.resolve("id=w3//env:B=2")
        #expect(spec.kind == .popen && spec.chdir == "/tmp" && spec.id == "w3")
        #expect(Array(spec.environment.keys) == ["A", "B"])
        #expect(spec.keys == ["popen", "chdir", "env:A", "id", "env:B"])
        #expect(throws: ExecnetError(.invalidSpec, "")) { try group.resolve("chdir=/x") }
        #expect(throws: ExecnetError(.invalidSpec, "")) { try group.resolve("host=h1") }
        // A default spec with no type fails only the specs that need it.
        group.defaultSpec = "id=x"
        #expect(throws: ExecnetError(.invalidSpec, "")) { try group.resolve("") }
        #expect(try group.resolve("popen").kind == .popen)
    }

    @Test func sshSpecsAsExecnetWritesThem() throws {
        let spec = try XSpec("ssh=-p 2222 user@build-3//ssh_config=/etc/cfg//id=b3//chdir=/w//nice=2//env:A=1//python=python3")
        #expect(spec.type == "ssh" && spec.kind == .ssh(spec.ssh!))
        #expect(spec.ssh?.arguments == ["-p", "2222", "user@build-3"] && spec.ssh?.destination == "user@build-3")
        #expect(spec.ssh?.configFile == "/etc/cfg" && spec.ssh?.reuse == SSHTarget.defaultReuse)
        #expect(spec.id == "b3" && spec.chdir == "/w" && spec.nice == 2 && spec.environment["A"] == "1")
        // python= is accepted (execnet's and pytest-xdist's specs parse) and readable, for popen too.
        #expect(spec["python"] == .string("python3"))
        #expect(try XSpec("popen//python=python3").kind == .popen)
        #expect(try XSpec("ssh=h//ssh_reuse=no").ssh?.reuse == nil)
        #expect(try XSpec("ssh=h//ssh_reuse=5").ssh?.reuse == .seconds(5))
    }

    @Test func unsupportedHostGatewaysPointToTheBroker() {
        do {
            _ = try XSpec("socket=somehost:8888")
            Issue.record("expected invalidSpec")
        } catch let error as ExecnetError {
            #expect(error.message.contains("broker"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}

@Suite struct AuthorizedKeysTests {
    @Test func keysAfterCommentsAndBlankLinesAreRead() throws {
        let first = try CurveKeyPair.generate().publicKey
        let second = try CurveKeyPair.generate().publicKey
        let keys = try AuthorizedKeys(parsing: "# a comment line\n\(first) first\n\n  \(second)\tsecond\n#short\n")
        #expect(keys.keys == [first, second])
        let stranger = try CurveKeyPair.generate().publicKey
        #expect(keys.allows(first) && !keys.allows(stranger))
        #expect(throws: ExecnetError(.invalidSpec, "")) { try AuthorizedKeys(parsing: "not-a-key\n") }
    }

    @Test func rolesComeBeforeTheKeyAndOldLinesAreClientsOnly() throws {
        let old = try CurveKeyPair.generate().publicKey
        let agent = try CurveKeyPair.generate().publicKey
        let status = try CurveKeyPair.generate().publicKey
        let both = try CurveKeyPair.generate().publicKey
        let keys = try AuthorizedKeys(parsing: """
            \(old) agent (an old line: 'agent' is a comment)
            agent \(agent) host one
            status\t\(status)
            client,status \(both)
            """)
        #expect(keys.roles(of: old) == .client)
        #expect(keys.roles(of: agent) == .agent)
        #expect(keys.roles(of: status) == .status)
        #expect(keys.roles(of: both) == [.client, .status])
        #expect(keys.linesWithoutRole == 1)
        #expect(keys.roles(of: try CurveKeyPair.generate().publicKey).isEmpty)
        #expect(throws: ExecnetError(.invalidSpec, "")) { try AuthorizedKeys(parsing: "admin \(old)\n") }
        #expect(throws: ExecnetError(.invalidSpec, "")) { try AuthorizedKeys(parsing: "agent\n") }
        #expect(throws: ExecnetError(.invalidSpec, "")) { try AuthorizedKeys(parsing: "agent not-a-key\n") }
    }

    @Test func aZ85KeyNeverStartsWithAHash() {
        // '#' is Z85's digit 84; a 5-character group starting with it exceeds 2^32, so no key line
        // can be mistaken for a comment.
        #expect(!ZMQCurve.isValidKey("#" + String(repeating: "0", count: 39)))
    }
}
