// The runtime's logger, shared by the client, the worker and the agent.

import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A logger for the runtime; `EXECNET_DEBUG=1` turns on debug messages.
package func makeExecnetLogger(label: String) -> Logger {
    var logger = Logger(label: label)
    if let flag = getenv("EXECNET_DEBUG"), String(cString: flag) != "", String(cString: flag) != "0" {
        logger.logLevel = .debug
    } else {
        logger.logLevel = .info
    }
    return logger
}
