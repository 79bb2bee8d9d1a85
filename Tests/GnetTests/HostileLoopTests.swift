#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Gnet
import Testing

/// The loop against handlers and peers that would wedge, spin or lose data in a naive reactor.
@Suite(.timeLimit(.minutes(2))) struct HostileLoopTests {
    /// Echoes, and keeps one timer re-arming itself with no delay from inside its own callback.
    final class LateTimer: EventHandler, @unchecked Sendable {
        let fired = Shared(0)
        func onBoot(_ engine: Engine) -> Action {
            let loop = engine.eventLoop
            func again() {
                fired.with { $0 += 1 }
                loop.schedule(after: .zero) { again() }  // at (or before) now, every time
            }
            loop.schedule(after: .zero) { again() }
            return .none
        }
        func onTraffic(_ c: Conn) -> Action {
            if let b = try? c.next() { _ = try? c.write(b) }
            return .none
        }
    }

    @Test func aTimerReArmedAtOrBeforeNowFiresOncePerMillisecondAndTheLoopServes() throws {
        let h = LateTimer()
        let engine = try Engine(handler: h, listen: ["tcp://127.0.0.1:0"])
        try withRunningEngine(engine) { e in
            let begin = gnet_monotonic_ns()
            let s = try TestSocket(e.addresses[0], timeout: 5)
            for i in 0..<200 {
                try s.send("ping \(i)\n")
                #expect(try s.receive(exactly: "ping \(i)\n".utf8.count) == Array("ping \(i)\n".utf8))
            }
            usleep(200_000)
            let elapsedMs = Double(gnet_monotonic_ns() - begin) / 1e6
            let fired = h.fired.get
            // It keeps firing, but only as real time passes: at most once per millisecond.
            #expect(fired >= 20, "the timer fired \(fired) times in \(elapsedMs) ms")
            #expect(Double(fired) <= elapsedMs + 50, "the timer fired \(fired) times in \(elapsedMs) ms: spinning")
        }
    }

    /// A line protocol that answers each request line with a 4000-byte block naming it: far
    /// more output than input, so pipelined requests fill the outbound buffer.
    final class BigAnswers: EventHandler, @unchecked Sendable {
        static func answer(_ n: Int) -> [UInt8] {
            let digits = String(n)
            var a = Array((String(repeating: "0", count: max(0, 8 - digits.count)) + digits + "|").utf8)
            a += [UInt8](repeating: UInt8(ascii: "a") + UInt8(n % 26), count: 4000 - a.count - 1) + [10]
            return a
        }
        let fullStops = Shared(0)
        func onTraffic(_ c: Conn) -> Action {
            while c.inboundBuffered > 0 {
                if c.outboundIsFull {
                    fullStops.with { $0 += 1 }
                    return .none  // the rest waits: the loop hands it back once output drains
                }
                guard let view = try? c.peek(), let nl = view.firstIndex(of: 10) else { return .none }
                let n = Int(String(decoding: view[..<nl], as: UTF8.self)) ?? -1
                c.discard(nl + 1)
                do { try c.write(Self.answer(n)) } catch { Issue.record("write refused: \(error)"); return .close }
            }
            return .none
        }
    }

    @Test(arguments: [false, true])
    func pipelinedRequestsAreAnsweredInOrderWhenTheClientReadsLate(halfClose: Bool) throws {
        let h = BigAnswers()
        var o = Options()
        o.writeBufferCap = 64 * 1024
        o.socketSendBuffer = 64 * 1024
        let engine = try Engine(handler: h, listen: ["tcp://127.0.0.1:0"], options: o)
        try withRunningEngine(engine) { e in
            let s = try TestSocket(e.addresses[0], timeout: 20)
            s.setReceiveBuffer(64 * 1024)
            let count = 3000
            let requests = Array((0..<count).map { "\($0)\n" }.joined().utf8)
            // The requests go out in one write from another thread (the server stops reading
            // while its answers pile up, so the write blocks until this side reads).
            let sender = try TestThread {
                try s.send(requests)
                if halfClose { shutdown(s.fd, Int32(SHUT_WR)) }
            }
            usleep(500_000)
            for n in 0..<count {
                let got = try s.receive(exactly: 4000)
                guard got == BigAnswers.answer(n) else {
                    Issue.record("answer \(n) is wrong: \(String(decoding: got.prefix(12), as: UTF8.self))")
                    return
                }
            }
            try sender.join()
            if halfClose { #expect(s.sawEOF(), "the server closes after the last answer to a half-closed peer") }
            #expect(h.fullStops.get > 0, "the outbound buffer never filled: the test proved nothing")
        }
    }

    final class FileSender: EventHandler, @unchecked Sendable {
        let file: Int32
        let outcome = Shared<GnetError?>(nil)
        init(file: Int32) { self.file = file }
        func onOpen(_ c: Conn) -> Action {
            do {
                _ = try c.sendFile(file, offset: 10, count: 5)  // the file has 10 bytes
            } catch {
                outcome.with { $0 = error }
            }
            return .close
        }
    }

    @Test func sendFilePastTheEndOfTheFileIsEndOfFileNotAFullSocket() throws {
        var template = Array("/tmp/gnet-sendfile-XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        #expect(fd >= 0)
        defer { close(fd); unlink(String(cString: template)) }
        _ = write(fd, "0123456789", 10)
        let h = FileSender(file: fd)
        let engine = try Engine(handler: h, listen: ["tcp://127.0.0.1:0"])
        try withRunningEngine(engine) { e in
            let s = try TestSocket(e.addresses[0], timeout: 5)
            #expect(s.sawEOF())
            #expect(eventually { h.outcome.get == .endOfFile })
        }
    }
}

/// A thread that runs `body` once; `join` waits for it and rethrows what it threw.
final class TestThread: @unchecked Sendable {
    private var thread = pthread_t()
    private let body: () throws -> Void
    private var failure: Error?

    init(_ body: @escaping () throws -> Void) throws {
        self.body = body
        let box = Unmanaged.passRetained(self)
        let rc = pthread_create(&thread, nil, { raw in
            let me = Unmanaged<TestThread>.fromOpaque(raw!).takeRetainedValue()
            do { try me.body() } catch { me.failure = error }
            return nil
        }, box.toOpaque())
        if rc != 0 {
            box.release()
            throw SystemError("pthread_create", errno: rc)
        }
    }

    func join() throws {
        pthread_join(thread, nil)
        if let failure { throw failure }
    }
}
