#if canImport(Glibc)
import Glibc
#endif
import CGnetLinux
@testable import Gnet
import Testing

@Suite struct BuffersAndPoolTests {
    @Test func ringBufferWrapsGrowsAndReleases() {
        let pool = BufferPool()
        var ring = RingBuffer()
        #expect(ring.storage == nil)
        var model: [UInt8] = []
        var seed: UInt64 = 99
        for round in 0..<400 {
            seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17
            let n = Int(seed % 3000)
            if round % 3 != 2 {
                let bytes = randomBytes(n, seed: seed)
                bytes.withUnsafeBytes { ring.append($0, pool: pool) }
                model += bytes
            } else {
                let k = min(n, ring.count)
                var out = [UInt8](repeating: 0, count: k)
                out.withUnsafeMutableBytes { ring.copy(k, to: $0.baseAddress!) }
                #expect(out == Array(model[0..<k]))
                ring.consume(k)
                model.removeFirst(k)
            }
            #expect(ring.count == model.count)
            #expect(ring.capacity == 0 || ring.capacity & (ring.capacity - 1) == 0, "power of two")
            let (a, b) = ring.segments()
            #expect(Array(a) + Array(b) == model)
        }
        ring.consume(ring.count)
        ring.releaseIfEmpty(pool: pool)
        #expect(ring.storage == nil && ring.capacity == 0)
    }

    @Test func capsNormaliseLikeGnet() {
        #expect(Options.normalisedCap(0) == 65536)
        #expect(Options.normalisedCap(-5) == 65536)
        #expect(Options.normalisedCap(1000) == 1024)
        #expect(Options.normalisedCap(1024) == 1024)
        #expect(Options.normalisedCap(1025) == 2048)
        #expect(Options.normalisedCap(100_000) == 131_072)
    }

    @Test func interestFlagsMatchTheKernelHeaders() {
        #expect(Interest.readable == gnet_EPOLLIN())
        #expect(Interest.writable == gnet_EPOLLOUT())
        #expect(Interest.error == gnet_EPOLLERR())
        #expect(Interest.hangUp == gnet_EPOLLHUP())
        #expect(Interest.exclusive == gnet_EPOLLEXCLUSIVE())
        #expect(Interest.edgeTriggered == gnet_EPOLLET())
    }

    @Test func hugeDurationsSaturateInsteadOfOverflowing() throws {
        #expect(Duration.seconds(Int64.max).nanoseconds == Int64.max / 4)
        #expect(Duration.seconds(-Int64.max).nanoseconds == -(Int64.max / 4))
        #expect(Duration.milliseconds(1500).nanoseconds == 1_500_000_000)
        // An engine whose timeouts are effectively "never" must still arm them without trapping.
        var o = Options()
        o.idleTimeout = .seconds(Int64.max)
        o.closeFlushTimeout = .seconds(Int64.max)
        let engine = try Engine(handler: try EchoHandler(), listen: ["tcp://127.0.0.1:0"], options: o)
        try withRunningEngine(engine) { e in
            let s = try TestSocket(e.addresses[0])
            try s.send("still fine")
            #expect(try s.receive(exactly: 10) == Array("still fine".utf8))
        }
    }

    @Test func poolReusesStorage() {
        let pool = BufferPool()
        let a = pool.take(capacity: 4096)
        pool.give(a, capacity: 4096)
        let b = pool.take(capacity: 4096)
        #expect(a == b)
        pool.give(b, capacity: 4096)
    }

    @Test func timerQueueOrdersByDeadlineThenInsertion() {
        var q = TimerQueue()
        var fired: [Int] = []
        for (i, d) in [50, 10, 30, 10, 20].enumerated() { q.schedule(at: Int64(d), .resumeAccept(i)) }
        while let e = q.popDue(now: 40) { if case .resumeAccept(let i) = e { fired.append(i) } }
        #expect(fired == [1, 3, 4, 2])
        #expect(q.nextDeadline == 50)
    }

    @Test func blockingPoolRunsJobsAndRefusesPastItsBound() throws {
        let pool = try BlockingPool(threads: 2, queueLimit: 4)
        let done = Shared(0)
        let gate = Shared(false)
        let started = Shared(0)
        for _ in 0..<2 { try pool.submit { started.with { $0 += 1 }; while !gate.get { usleep(1000) }; done.with { $0 += 1 } } }
        #expect(eventually { started.get == 2 }, "both threads hold a blocking job, the queue is empty")
        for _ in 0..<4 { try pool.submit { done.with { $0 += 1 } } }
        #expect(throws: GnetError.queueFull) { try pool.submit {} }
        gate.with { $0 = true }
        pool.shutdown()
        #expect(done.get == 6, "queued jobs finish before shutdown returns")
        #expect(throws: GnetError.engineStopped) { try pool.submit {} }
    }
}
