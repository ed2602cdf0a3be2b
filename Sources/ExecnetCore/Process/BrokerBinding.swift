// Where a broker gateway goes: the broker's endpoint and the key files to reach it. A spec's kind
// (`XSpec.Kind.broker`) carries one, and so does a group made for a broker.

/// A broker a ``Group`` makes its gateways on by default, and the key files to reach it.
public struct BrokerBinding: Sendable, Hashable {
    /// The broker's endpoint, e.g. `tcp://broker:5555`.
    public var endpoint: String
    /// The broker's CURVE public key file, for a CURVE broker.
    public var serverKeyFile: String?
    /// This client's CURVE secret key file, for a CURVE broker.
    public var secretKeyFile: String?

    /// Creates a binding.
    ///
    /// - Parameters:
    ///   - endpoint: The broker's endpoint.
    ///   - serverKeyFile: The broker's public key file (CURVE).
    ///   - secretKeyFile: This client's secret key file (CURVE).
    public init(endpoint: String, serverKeyFile: String? = nil, secretKeyFile: String? = nil) {
        self.endpoint = endpoint
        self.serverKeyFile = serverKeyFile
        self.secretKeyFile = secretKeyFile
    }

    /// The spec parts that send a gateway to this broker, as text (how ``Group/defaultSpec`` shows them).
    package var specPrefix: String {
        var text = "broker=\(endpoint)"
        if let serverKeyFile { text += "//serverkey=\(serverKeyFile)" }
        if let secretKeyFile { text += "//secretkey=\(secretKeyFile)" }
        return text
    }
}
