// Liveness of local (popen) workers. The hub watches each worker's pidfd, so a worker that dies is
// seen at once; one that is stopped (SIGSTOP, a terminal's Ctrl-Z, a tracer) would hold its
// channels forever. The hub reads each worker's state in /proc/<pid>/stat on a timer: a worker
// stopped for the liveness window (default 1 s × 3) is killed, and its channels end with the cause
// "unresponsive". The state comes from the kernel, not from the worker, so a worker whose I/O
// thread is busy in a long task is never taken for dead. Everything here runs on the hub's thread.

import ExecnetCore
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// The hub's bookkeeping for local liveness.
struct LocalLivenessState {
    /// Whether the liveness timer is scheduled (it runs while local workers exist).
    var ticking = false
    /// A gap longer than the window between ticks means this process was not scheduled (it was
    /// stopped itself), and what was seen before the gap says nothing about the workers now.
    var turns = SchedulingGap()
}

extension Hub {
    /// Starts the liveness timer if it is not running and local liveness is on.
    func startLocalLiveness(_ loop: IOLoop) {
        guard !localLiveness.ticking, let settings = ExecnetSettings.localLiveness else { return }
        localLiveness.ticking = true
        _ = localLiveness.turns.missed(settings.expiry, now: .now)
        scheduleLocalLivenessTick(settings, loop)
    }

    private func scheduleLocalLivenessTick(_ settings: LivenessSettings, _ loop: IOLoop) {
        loop.schedule(at: .now.advanced(by: settings.interval / 2)) { [unowned self, unowned loop] in
            guard self.localLivenessTick(settings) else {
                self.localLiveness.ticking = false
                return
            }
            self.scheduleLocalLivenessTick(ExecnetSettings.localLiveness ?? settings, loop)
        }
    }

    /// Checks every local worker once. Returns whether the timer should go on.
    private func localLivenessTick(_ settings: LivenessSettings) -> Bool {
        let now = ContinuousClock.now
        if localLiveness.turns.missed(settings.expiry, now: now) != nil {
            // This process was not running for a whole window: start every count afresh.
            logger.debug("the hub was not scheduled for a liveness window; local liveness starts afresh")
            for key in peers.keys { peers[key]?.stoppedSince = nil }
            return true
        }
        var any = false
        for (key, peer) in peers where peer.pid > 0 {
            any = true
            guard peer.unresponsive == nil else { continue }
            guard let state = processState(peer.pid), state == UInt8(ascii: "T") || state == UInt8(ascii: "t") else {
                if peer.stoppedSince != nil { peers[key]?.stoppedSince = nil }
                continue
            }
            let since = peer.stoppedSince ?? now
            if peer.stoppedSince == nil { peers[key]?.stoppedSince = now }
            guard since.duration(to: now) >= settings.expiry else { continue }
            let cause = "worker of gateway \(peer.gateway.id) (pid \(peer.pid)) was unresponsive: stopped for "
                + "\(since.duration(to: now)) (liveness window \(settings.expiry)); killed"
            logger.warning("\(cause)")
            peers[key]?.unresponsive = cause
            // The pidfd reports the death; the exit handler ends the channels with the cause.
            processes?.signal(key, SIGKILL)
        }
        return any
    }
}

/// The state letter of a process from `/proc/<pid>/stat` (`R`, `S`, `D`, `T` stopped, `t` traced,
/// `Z`…), or `nil` if it cannot be read.
func processState(_ pid: pid_t) -> UInt8? {
    let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 512)
    let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    guard count > 0 else { return nil }
    // "pid (comm) S ...": the name may hold spaces and parentheses, so look after the last ')'.
    guard let end = buffer[0..<count].lastIndex(of: UInt8(ascii: ")")), end + 2 < count else { return nil }
    return buffer[end + 2]
}
