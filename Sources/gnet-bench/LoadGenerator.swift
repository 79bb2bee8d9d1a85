#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Gnet

/// An echo load generator: N connections, fixed-size messages, a pipelining depth; every echoed
/// byte is checked. One thread, one epoll, no allocation in the loop, so the server is what
/// is measured. A round = write `depth` messages at once, wait for all of them to come back.
struct LoadGenerator {
    struct Config {
        var host = "127.0.0.1"
        var port = 0
        var connections = 100
        var size = 64
        var depth = 1
        var duration = 5.0
        /// Stop after this many messages in total instead of after `duration` (0 = by time).
        var messages = 0
        var cpu = -1
    }

    struct Report {
        var messages = 0
        var bytes = 0
        var seconds = 0.0
        var p50us = 0.0
        var p99us = 0.0
        var errors = 0
        var line: String {
            let rate = Double(messages) / seconds
            return "messages=\(messages) seconds=\(fmt(seconds, 3)) msgs_per_s=\(Int(rate)) MB_per_s=\(fmt(Double(bytes) / seconds / 1e6, 1)) p50_us=\(fmt(p50us, 1)) p99_us=\(fmt(p99us, 1)) errors=\(errors)"
        }
    }

    private struct Connection {
        var fd: Int32 = -1
        var expected = 0          // bytes still to come back this round
        var offset = 0            // where in the round's payload the next echoed byte belongs
        var started: Int64 = 0
    }

    let config: Config

    func run() -> Report {
        if config.cpu >= 0 { _ = gnet_pin_to_cpu(Int32(config.cpu)) }
        let round = config.size * config.depth
        // The payload: a pattern that changes every byte, so a misplaced byte is caught.
        let payload = UnsafeMutableRawBufferPointer.allocate(byteCount: round, alignment: 64)
        for i in 0..<round { payload[i] = UInt8(truncatingIfNeeded: i &* 31 &+ i >> 8) }
        let readBuf = UnsafeMutableRawBufferPointer.allocate(byteCount: max(65536, round), alignment: 64)
        let maxSamples = 20_000_000
        let samples = UnsafeMutablePointer<Int32>.allocate(capacity: maxSamples)
        var sampleCount = 0
        var report = Report()
        let ep = epoll_create1(Int32(EPOLL_CLOEXEC))
        var conns = [Connection](repeating: Connection(), count: config.connections)
        guard let target = SocketAddress.ipv4(config.host, port: config.port) else {
            report.errors = 1
            return report
        }
        for i in 0..<config.connections {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            let rc = target.withUnsafeSockaddr { connect(fd, $0, $1) }
            if rc != 0 {
                printError("connect: \(String(cString: strerror(errno)))\n")
                report.errors += 1
                close(fd)
                continue
            }
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, 4)
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            conns[i].fd = fd
            _ = gnet_epoll_ctl(ep, EPOLL_CTL_ADD, fd, gnet_EPOLLIN(), UInt64(i))
        }
        let start = gnet_monotonic_ns()
        let deadline = start + Int64(config.duration * 1e9)
        var outstanding = 0
        func send(_ i: Int) -> Bool {
            conns[i].expected = round
            conns[i].offset = 0
            conns[i].started = gnet_monotonic_ns()
            var off = 0
            let fd = conns[i].fd
            while off < round {
                let start = off
                switch try? syscall(blocking: true, where: "write", { write(fd, payload.baseAddress! + start, round - start) }) {
                case .processed(let n): off += n
                case .wouldBlock: usleep(10)  // tiny rounds never get here
                case nil: return false
                }
            }
            outstanding += 1
            return true
        }
        var sent = 0
        let budget = config.messages > 0 ? config.messages : Int.max
        for i in 0..<conns.count where conns[i].fd >= 0 {
            if sent >= budget { break }
            if send(i) { sent += config.depth } else { report.errors += 1 }
        }
        var events = [gnet_event_t](repeating: gnet_event_t(), count: 512)
        var stopping = false
        while outstanding > 0 {
            let n = (try? events.withUnsafeMutableBufferPointer { b in
                try syscall(where: "epoll_wait") { gnet_epoll_wait(ep, b.baseAddress!, 512, 1000) }
            }) ?? -1
            if n <= 0 { report.errors += 1; printError("load: no progress for 1s\n"); break }
            let now = gnet_monotonic_ns()
            if config.messages == 0 && now >= deadline { stopping = true }
            for e in 0..<Int(n) {
                let i = Int(events[e].token)
                let got = read(conns[i].fd, readBuf.baseAddress!, min(readBuf.count, conns[i].expected))
                if got <= 0 {
                    if got < 0 && errno == EAGAIN { continue }
                    report.errors += 1
                    _ = gnet_epoll_ctl(ep, EPOLL_CTL_DEL, conns[i].fd, 0, 0)
                    outstanding -= 1
                    continue
                }
                if memcmp(readBuf.baseAddress!, payload.baseAddress! + conns[i].offset, got) != 0 { report.errors += 1 }
                conns[i].offset += got
                conns[i].expected -= got
                report.bytes += got
                if conns[i].expected == 0 {
                    outstanding -= 1
                    report.messages += config.depth
                    if sampleCount < maxSamples {
                        samples[sampleCount] = Int32(clamping: (now - conns[i].started) / 1000)
                        sampleCount += 1
                    }
                    if !stopping && sent < budget {
                        if send(i) { sent += config.depth } else { report.errors += 1 }
                    }
                }
            }
        }
        report.seconds = Double(gnet_monotonic_ns() - start) / 1e9
        var sorted = UnsafeMutableBufferPointer(start: samples, count: sampleCount)
        sorted.sort()
        if sampleCount > 0 {
            report.p50us = Double(sorted[sampleCount / 2])
            report.p99us = Double(sorted[min(sampleCount - 1, sampleCount * 99 / 100)])
        }
        for c in conns where c.fd >= 0 { close(c.fd) }
        close(ep)
        samples.deallocate()
        payload.deallocate()
        readBuf.deallocate()
        return report
    }
}

func fmt(_ v: Double, _ digits: Int) -> String {
    var p = 1.0
    for _ in 0..<digits { p *= 10 }
    let r = (v * p).rounded() / p
    var s = "\(r)"
    if let dot = s.firstIndex(of: ".") {
        let decimals = s.distance(from: dot, to: s.endIndex) - 1
        if decimals < digits { s += String(repeating: "0", count: digits - decimals) }
    } else if digits > 0 {
        s += "." + String(repeating: "0", count: digits)
    }
    return s
}
