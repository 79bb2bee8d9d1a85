#if canImport(Glibc)
import Glibc
#endif
import CBenchKernels
import CGnetLinux
import CMallocCounter
import Gnet

/// `gnet-bench codec`: length-field decoding of 64-byte frames (4-byte header, 60-byte payload)
/// by `LengthFieldCodec` through `any Codec` (as `FrameAdapter` calls it) against a plain C
/// loop doing the same parse over the same buffer. Rounds alternate C and Swift.
struct CodecBenchmark {
    var frames = 1 << 20
    var rounds = 5

    func run() -> Int32 {
        let frameSize = 64
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: frames * frameSize, alignment: 64)
        defer { buffer.deallocate() }
        for i in 0..<frames {
            let base = i * frameSize
            buffer[base] = 0; buffer[base + 1] = 0; buffer[base + 2] = 0; buffer[base + 3] = 60
            for j in 4..<frameSize { buffer[base + j] = UInt8(truncatingIfNeeded: i &+ j) }
        }
        let codec: any Codec
        do { codec = try LengthFieldCodec() } catch { printError("\(error)\n"); return 1 }
        var cNanos: Int64 = 0, swiftNanos: Int64 = 0
        var cSum: UInt64 = 0, swiftSum: UInt64 = 0
        var allocations: UInt64 = 0
        let bytes = UnsafeRawBufferPointer(buffer)
        for _ in 0..<rounds {
            var t = gnet_monotonic_ns()
            let n = gnet_c_decode_length_field(bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), bytes.count, &cSum)
            cNanos += gnet_monotonic_ns() - t
            guard n == frames else { printError("C loop decoded \(n) frames\n"); return 1 }

            let before = gnet_thread_allocations()
            t = gnet_monotonic_ns()
            var off = 0, count = 0
            do throws(CodecError) {
                while let b = try codec.decode(InboundView(UnsafeRawBufferPointer(rebasing: bytes[off...]))) {
                    swiftSum &+= UInt64(b.payload.isEmpty ? 0 : bytes[off + b.payload.lowerBound]) &+ UInt64(b.payload.count)
                    off += b.length
                    count += 1
                }
            } catch {
                printError("decode failed: \(error)\n")
                return 1
            }
            swiftNanos += gnet_monotonic_ns() - t
            allocations += gnet_thread_allocations() - before
            guard count == frames else { printError("Swift decoded \(count) frames\n"); return 1 }
        }
        guard cSum == swiftSum else { printError("checksums differ: C \(cSum), Swift \(swiftSum)\n"); return 1 }
        let total = Double(frames * rounds)
        let cRate = total / (Double(cNanos) / 1e9), swiftRate = total / (Double(swiftNanos) / 1e9)
        print("| decoder | frames/s | ns/frame | ÷ C | allocations |")
        print("|---|---:|---:|---:|---:|")
        print("| C loop | \(Int(cRate)) | \(fmt(Double(cNanos) / total, 2)) | 1.00× | 0 |")
        print("| Gnet LengthFieldCodec | \(Int(swiftRate)) | \(fmt(Double(swiftNanos) / total, 2)) | \(fmt(swiftRate / cRate, 2))× | \(allocations) |")
        return allocations == 0 ? 0 : 1
    }
}
