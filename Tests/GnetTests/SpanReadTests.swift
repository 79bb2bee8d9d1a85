#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
import Gnet
import GnetProcess
import Testing

/// The safe read API: `withInbound` (everything, zero-copy, as at most two spans, consuming
/// what the closure returns), `withPeek` (contiguous), and writes of spans.
@Suite struct SpanReadTests {
    /// Echoes with `withInbound` and `write(Span)`.
    final class SpanEcho: EventHandler, @unchecked Sendable {
        func onTraffic(_ c: Conn) -> Action {
            c.withInbound { a, b in
                do { try c.write(a) } catch { return 0 }
                do { try c.write(b) } catch { return a.count }
                return a.count + b.count
            }
            return .none
        }
    }

    @Test func spanEchoIsExact() throws {
        let engine = try Engine(handler: SpanEcho(), listen: ["tcp://127.0.0.1:0"])
        try withRunningEngine(engine) { e in
            let s = try TestSocket(e.addresses[0])
            for size in [1, 100, 4096, 65_537, 1 << 20] {
                let data = randomBytes(size, seed: UInt64(size))
                try s.send(data)
                #expect(try s.receive(exactly: size) == data, "\(size) bytes")
            }
        }
    }

    /// Consumes an uneven amount per turn, so the connection's buffer wraps, and checks that
    /// the two spans together are the pattern `i % 251` in order.
    final class UnevenReader: EventHandler, @unchecked Sendable {
        let seen = Shared<Int>(0)
        let wrapped = Shared<Int>(0)
        let outOfOrder = Shared<Bool>(false)
        var turn = 0
        func onTraffic(_ c: Conn) -> Action {
            turn += 1
            let take = 1 + (turn * 7919) % 20_000
            var at = seen.get
            let consumed = c.withInbound { a, b -> Int in
                if !b.isEmpty { wrapped.with { $0 += 1 } }
                var ordered = true
                var k = 0
                for i in a.indices where k < take { ordered = ordered && a[i] == UInt8(at % 251); at += 1; k += 1 }
                for i in b.indices where k < take { ordered = ordered && b[i] == UInt8(at % 251); at += 1; k += 1 }
                if !ordered { outOfOrder.with { $0 = true } }
                return k
            }
            seen.with { $0 += consumed }
            if c.inboundBuffered > 0 { c.wake() }
            return .none
        }
    }

    @Test func twoSpansInOrderAcrossTheBuffersEnd() throws {
        let h = UnevenReader()
        let engine = try Engine(handler: h, listen: ["tcp://127.0.0.1:0"])
        let total = 2 << 20
        try withRunningEngine(engine) { e in
            let s = try TestSocket(e.addresses[0], timeout: 30)
            try s.send((0..<total).map { UInt8($0 % 251) })
            #expect(eventually(seconds: 30) { h.seen.get == total }, "\(h.seen.get) of \(total)")
        }
        #expect(!h.outOfOrder.get)
        #expect(h.wrapped.get > 0, "the wrapped case was exercised")
        print("figure: withInbound over 2 MiB consumed unevenly: \(h.wrapped.get) callbacks saw two spans")
    }

    /// `withPeek(n)` is contiguous whatever the buffer's layout; a short buffer throws.
    final class Peeker: EventHandler, @unchecked Sendable {
        let frames = Shared<[[UInt8]]>([])
        let short = Shared<Bool>(false)
        func onTraffic(_ c: Conn) -> Action {
            while c.inboundBuffered >= 1000 {
                let frame = (try? c.withPeek(1000) { span in (0..<span.count).map { span[$0] } }) ?? []
                frames.with { $0.append(frame) }
                c.discard(1000)
            }
            do { _ = try c.withPeek(1000) { $0.count } } catch { short.with { $0 = $0 || error == .shortBuffer } }
            return .none
        }
    }

    @Test func withPeekIsContiguousAndShortBufferThrows() throws {
        let h = Peeker()
        let engine = try Engine(handler: h, listen: ["tcp://127.0.0.1:0"])
        let data = randomBytes(1000 * 300, seed: 9)
        try withRunningEngine(engine) { e in
            let s = try TestSocket(e.addresses[0])
            // Odd-sized sends, so frames straddle reads and the buffer's end.
            var at = 0
            while at < data.count {
                let n = min(777 + at % 5000, data.count - at)
                try s.send(Array(data[at..<(at + n)]))
                at += n
            }
            #expect(eventually { h.frames.get.count == 300 })
        }
        #expect(h.frames.get.joined().elementsEqual(data))
        #expect(h.short.get)
    }

    /// Waits for a value of `size` bytes, then reads it once through `withInbound` (or, for
    /// comparison, by `peek()` of everything on every callback, which copies once wrapped).
    final class ValueReader: EventHandler, @unchecked Sendable {
        let size: Int, naive: Bool
        let done = Shared<Int64>(0)
        var first: Int64 = 0
        var checksum = 0
        init(size: Int, naive: Bool) { self.size = size; self.naive = naive }
        func onTraffic(_ c: Conn) -> Action {
            if first == 0 { first = gnet_monotonic_ns() }
            if naive {
                guard let view = try? c.peek(), view.count >= size else { return .none }
                checksum = Int(view[0]) + Int(view[size - 1])
                c.discard(size)
            } else {
                guard c.inboundBuffered >= size else { return .none }
                c.withInbound { a, b in
                    checksum = Int(a[0]) + Int(b.isEmpty ? a[a.count - 1] : b[b.count - 1])
                    return a.count + b.count
                }
            }
            done.with { $0 = gnet_monotonic_ns() - first }
            return .none
        }
    }

    static func readTime(_ size: Int, naive: Bool) throws -> Double {
        let h = ValueReader(size: size, naive: naive)
        let engine = try Engine(handler: h, listen: ["tcp://127.0.0.1:0"])
        let chunk = [UInt8](repeating: 7, count: 1 << 20)
        try withRunningEngine(engine) { e in
            let s = try TestSocket(e.addresses[0], timeout: 60)
            for _ in 0..<(size >> 20) { try s.send(chunk) }
            #expect(eventually(seconds: 60) { h.done.get > 0 })
        }
        return Double(h.done.get) / 1e6
    }

    @Test func aLargeValueReadsInTimeLinearInItsSize() throws {
        var perMiB: [Int: Double] = [:]
        for mib in [1, 16, 64] {
            perMiB[mib] = try Self.readTime(mib << 20, naive: false) / Double(mib)
        }
        let naive16 = try Self.readTime(16 << 20, naive: true) / 16
        print("figure: a value read with withInbound, ms per MiB: 1 MiB \(perMiB[1]!), 16 MiB \(perMiB[16]!), 64 MiB \(perMiB[64]!); peek() of everything per callback at 16 MiB: \(naive16)")
        #expect(perMiB[64]! < 2.5 * max(perMiB[16]!, perMiB[1]!), "linear: per-MiB time does not grow with the size")
    }
}

/// The compiler, not a comment, keeps spans inside the callback: a handler that tries to keep
/// one in a field does not compile, and the same handler keeping a count does.
@Suite struct SpanEscapeTests {
    static func typecheck(_ source: String) throws -> (status: Int32, output: String) {
        var exe = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &exe, exe.count - 1)
        try #require(n > 0)
        let build = String(decoding: exe[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let file = "/tmp/gnet-span-escape-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).swift"
        let f = try #require(fopen(file, "w"))
        fputs(source, f)
        fclose(f)
        defer { unlink(file) }
        let swiftc = access("/opt/swift/usr/bin/swiftc", X_OK) == 0 ? "/opt/swift/usr/bin/swiftc" : "swiftc"
        let p = try ChildProcess([swiftc, "-typecheck", "-swift-version", "6", "-I", build + "/Modules",
                                  "-Xcc", "-fmodule-map-file=\(build)/CGnetLinux.build/module.modulemap", file],
                                 stderrPath: file + ".err")
        let status = p.wait(timeout: 120) ?? -1
        defer { unlink(file + ".err") }
        var output = ""
        if let e = fopen(file + ".err", "r") {
            var line = [CChar](repeating: 0, count: 1024)
            while fgets(&line, 1024, e) != nil { output += String(cString: line) }
            fclose(e)
        }
        return (status, output)
    }

    @Test func aSpanKeptPastTheCallbackDoesNotCompile() throws {
        let body = """
        import Gnet
        final class Keeper: EventHandler {
            var kept: Span<UInt8>? = nil
            func onTraffic(_ c: Conn) -> Action {
                c.withInbound { a, b in kept = a; return 0 }
                return .none
            }
        }
        """
        let refused = try Self.typecheck(body)
        #expect(refused.status != 0, "the compiler accepted a span kept in a field")
        #expect(refused.output.contains("~Escapable"), "\(refused.output)")
        let control = try Self.typecheck(body.replacing("var kept: Span<UInt8>? = nil", with: "var kept = 0")
            .replacing("kept = a;", with: "kept = a.count;"))
        #expect(control.status == 0, "the same handler keeping a count compiles: \(control.output)")
    }
}
