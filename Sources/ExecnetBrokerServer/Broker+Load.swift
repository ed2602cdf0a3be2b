// LOAD_REPORT at the broker (docs/PROTOCOL.md, "Load reports"): a WELCOME to an agent asks for
// reports every `load_report_ms`; each report an agent sends is checked (LoadReport) and kept on
// its agent's record, for status and metrics. A report the broker refuses changes nothing and is
// logged at a bounded rate; none stops the broker.

import ExecnetCore
import ExecnetValue

extension Broker {
    /// The WELCOME for an agent: the common one, plus the load report interval when reports are on.
    func agentWelcomePayload() -> ControlPayload {
        var payload = welcomePayload()
        if let interval = configuration.loadReportInterval {
            payload["load_report_ms"] = .int(Int64(interval.clampedMilliseconds))
        }
        return payload
    }

    /// Checks an agent's LOAD_REPORT and keeps it; refuses (logged, rate-limited) a report on a
    /// channel other than 0, a malformed one, or one for another host.
    func handleLoadReport(_ address: PeerAddress, _ message: WireMessage) {
        guard let agent = table.agent(address) else { return }
        guard message.channelID == 0 else {
            rogue.warning("dropped a bad load report", "on channel \(message.channelID) from agent \(agent.name)")
            return
        }
        do {
            let report = try LoadReport(validating: message.payload, from: agent.name)
            table.recordLoad(report, agent: address, now: .now)
        } catch {
            rogue.warning("dropped a bad load report", "\(error) from agent \(agent.name)")
        }
    }

    /// An agent's last load report as the status's `load` dict (``BrokerStatus/HostLoad``), or `nil`.
    func hostLoadValue(_ agent: AgentRecord, now: ContinuousClock.Instant) -> Value? {
        guard let load = agent.load else { return nil }
        let value = BrokerStatus.HostLoad(load.report, secondsSinceReport: load.received.duration(to: now).seconds)
        return try? ValueEncoder().encode(value)
    }
}
