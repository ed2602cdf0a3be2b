// Where an ssh gateway goes: the ssh arguments of its spec (`ssh=-p 2222 user@host`), an ssh
// configuration file, and whether the OpenSSH connection is shared. A spec's kind
// (`XSpec.Kind.ssh`) carries one; ExecnetClient's SSH folder turns it into an `ssh` command line.

/// The host an ssh gateway's worker runs on, as its spec names it.
public struct SSHTarget: Sendable, Hashable {
    /// How long a shared connection stays open after its last session by default: 60 s.
    public static let defaultReuse: Duration = .seconds(60)

    /// The spec's `ssh=` value split on white space: ssh options, then the destination
    /// (`[user@]host`), which comes last.
    public var arguments: [String]
    /// The ssh configuration file (`ssh_config=FILE`, given to ssh as `-F FILE`).
    public var configFile: String?
    /// How long a shared connection (OpenSSH's ControlMaster) stays open after its last session;
    /// `nil` when every gateway opens a connection of its own (`ssh_reuse=no`).
    public var reuse: Duration?

    /// Creates a target.
    ///
    /// - Parameters:
    ///   - arguments: ssh options, then the destination, last.
    ///   - configFile: An ssh configuration file.
    ///   - reuse: How long a shared connection outlives its last session; `nil` for no sharing.
    public init(arguments: [String], configFile: String? = nil, reuse: Duration? = SSHTarget.defaultReuse) {
        self.arguments = arguments
        self.configFile = configFile
        self.reuse = reuse
    }

    /// The destination (`[user@]host`): the last argument.
    public var destination: String { arguments.last ?? "" }
}
