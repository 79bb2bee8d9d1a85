#if canImport(Glibc)
import Glibc
#endif
import CMallocCounter
import Dispatch
import Gnet
import Testing

/// gnet's framed-traffic protocol as a user-defined codec: magic 0xCAFE (2 B) + length (4 B,
/// big endian) + body. Decoding rejects a wrong magic; encoding writes magic and length.
struct MagicLengthCodec: Codec {
    let inner = try! LengthFieldCodec(lengthFieldOffset: 2, lengthFieldLength: 4, initialBytesToStrip: 6, maxFrameLength: 2 << 20)
    var maxFrameLength: Int { inner.maxFrameLength }
    func decode(_ input: InboundView) throws(CodecError) -> FrameBoundary? {
        if input.count >= 2, input[0] != 0xCA || input[1] != 0xFE { throw .invalidConfiguration("bad magic") }
        return try inner.decode(input)
    }
    func affixes(payloadLength: Int) throws(CodecError) -> FrameAffixes {
        var f = try inner.affixes(payloadLength: payloadLength)
        var withMagic = FrameAffixes()
        withMagic.prefix.append(0xCA)
        withMagic.prefix.append(0xFE)
        for b in f.prefix.bytes { withMagic.prefix.append(b) }
        f.prefix = withMagic.prefix
        return f
    }
}

/// Echoes each frame re-encoded; counts frames and records close reasons.
final class FrameEchoHandler: FrameHandler, @unchecked Sendable {
    let frames = Shared(0)
    let closes = Shared<[GnetError?]>([])
    func onFrame(_ frame: Span<UInt8>, _ c: FramedConn) -> Action {
        frames.with { $0 += 1 }
        _ = try? c.writeFrame(frame)
        return .none
    }
    func onClose(_ c: FramedConn, error: GnetError?) -> Action {
        closes.with { $0.append(error) }
        return .none
    }
}

func magicFrame(_ body: [UInt8]) -> [UInt8] {
    let n = body.count
    return [0xCA, 0xFE, UInt8(n >> 24 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] + body
}

@Suite(.timeLimit(.minutes(2))) struct FrameAdapterTests {
    /// Packets of 64 B … 1 MiB, many per write, batch limits that force the adapter to wake.
    @Test(arguments: [0, 1, 3])
    func framedEchoWithBatchLimits(batch: Int) throws {
        let h = FrameEchoHandler()
        var o = Options()
        o.writeBufferCap = 4 << 20
        let engine = try Engine(handler: FrameAdapter(codec: MagicLengthCodec(), handler: h, batchLimit: batch), listen: ["tcp://127.0.0.1:0"], options: o)
        try withRunningEngine(engine) { e in
            let failures = Shared<[String]>([])
            DispatchQueue.concurrentPerform(iterations: 4) { client in
                do {
                    let s = try TestSocket(e.addresses[0])
                    var burst: [UInt8] = []
                    var size = 64, i = 0
                    while size <= 1 << 20 {
                        burst += magicFrame(randomBytes(size, seed: UInt64(client * 100 + i + 1)))
                        size *= 4; i += 1
                    }
                    for k in 0..<16 { burst += magicFrame(randomBytes(64 + k, seed: UInt64(k + 7))) }
                    try s.send(burst)
                    let back = try s.receive(exactly: burst.count)
                    if back != burst { throw TestFailure("client \(client): echoed frames differ") }
                } catch { failures.with { $0.append("\(error)") } }
            }
            #expect(failures.get == [])
        }
        #expect(h.frames.get == 4 * (8 + 16))   // 64 B, 256 B, … 1 MiB, then 16 small ones
    }

    /// The peer sends frames and closes at once: with a batch limit of 1 the adapter must still
    /// deliver every buffered frame (through wake-ups) before the connection closes.
    @Test func framesBufferedAtEOFAreStillDelivered() throws {
        let h = FrameEchoHandler()
        let engine = try Engine(handler: FrameAdapter(codec: MagicLengthCodec(), handler: h, batchLimit: 1), listen: ["tcp://127.0.0.1:0"])
        try withRunningEngine(engine) { e in
            let s = try TestSocket(e.addresses[0])
            var burst: [UInt8] = []
            for k in 0..<20 { burst += magicFrame(randomBytes(100, seed: UInt64(k))) }
            try s.send(burst)
            shutdown(s.fd, Int32(SHUT_WR))
            #expect(try s.receiveUntilEOF() == burst)
            #expect(eventually { h.closes.get.count == 1 })
        }
        #expect(h.frames.get == 20)
        #expect(h.closes.get == [.endOfStream])
    }

    @Test func truncatedFrameAtEOFIsReported() throws {
        let h = FrameEchoHandler()
        let engine = try Engine(handler: FrameAdapter(codec: MagicLengthCodec(), handler: h), listen: ["tcp://127.0.0.1:0"])
        try withRunningEngine(engine) { e in
            do {
                let s = try TestSocket(e.addresses[0])
                try s.send([0xCA, 0xFE, 0, 0])   // half a header
            }
            #expect(eventually { h.closes.get.count == 1 })
        }
        #expect(h.closes.get == [.codec(.truncatedFrame(buffered: 4))])
    }

    /// A hostile length closes only that connection, at once, without waiting for (or allocating)
    /// the announced size; another connection keeps working.
    @Test func oversizedFrameClosesOnlyThatConnection() throws {
        let h = FrameEchoHandler()
        let engine = try Engine(handler: FrameAdapter(codec: MagicLengthCodec(), handler: h), listen: ["tcp://127.0.0.1:0"])
        try withRunningEngine(engine) { e in
            let good = try TestSocket(e.addresses[0])
            let bad = try TestSocket(e.addresses[0])
            try bad.send([0xCA, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF])
            #expect(bad.sawEOF())
            let f = magicFrame(Array("still here".utf8))
            try good.send(f)
            #expect(try good.receive(exactly: f.count) == f)
            let garbage = try TestSocket(e.addresses[0])
            try garbage.send(Array("GET / HTTP/1.1\r\n\r\n".utf8))
            #expect(garbage.sawEOF())
        }
        let errors = h.closes.get.compactMap { $0 }
        #expect(errors.contains(.codec(.frameTooLong(length: 0xFFFF_FFFF + 6, maximum: 2 << 20))))
        #expect(errors.contains(.codec(.invalidConfiguration("bad magic"))))
    }

    @Test func lineFramesOverUDPAndUnix() throws {
        let h = FrameEchoHandler()
        let engine = try Engine(handler: FrameAdapter(codec: LineCodec(), handler: h),
                                listen: ["udp://127.0.0.1:0", "unix://" + tempSocketPath("lines")])
        try withRunningEngine(engine) { e in
            let u = try TestSocket(e.addresses[0])
            try u.send("one\ntwo\n")
            #expect(try u.receive(exactly: 4) == Array("one\n".utf8))
            #expect(try u.receive(exactly: 4) == Array("two\n".utf8))
            let s = try TestSocket(e.addresses[1])
            try s.send("a\r\nbb\n")
            #expect(try s.receive(exactly: 5) == Array("a\nbb\n".utf8))
        }
    }

    /// Decoding and encoding allocate nothing per frame once warmed up.
    final class CountingFrameEcho: FrameHandler, @unchecked Sendable {
        var n = 0
        let samples = Shared<[UInt64]>([])
        init() { samples.with { $0.reserveCapacity(4) } }
        func onFrame(_ frame: Span<UInt8>, _ c: FramedConn) -> Action {
            _ = try? c.writeFrame(frame)
            n += 1
            if n == 1000 || n == 11_000 { let a = gnet_thread_allocations(); samples.with { $0.append(a) } }
            return .none
        }
    }

    @Test func steadyStateFramingAllocatesNothing() throws {
        let h = CountingFrameEcho()
        let engine = try Engine(handler: FrameAdapter(codec: try LengthFieldCodec(), handler: h), listen: ["tcp://127.0.0.1:0"])
        try withRunningEngine(engine) { e in
            let s = try TestSocket(e.addresses[0])
            let frame: [UInt8] = [0, 0, 0, 60] + randomBytes(60, seed: 1)
            let batch = Array([[UInt8]](repeating: frame, count: 10).joined())
            for _ in 0..<1100 {
                try s.send(batch)
                _ = try s.receive(exactly: batch.count)
            }
        }
        let samples = h.samples.get
        try #require(samples.count == 2)
        #expect(samples[1] - samples[0] == 0, "allocations over 10 000 decoded and encoded frames")
    }
}
