import CGnetLinux

/// A histogram of durations in shared memory: fixed, log-spaced buckets (1–2.5–5 steps from
/// 100 µs to 10 s, then everything longer) and the sum of what was recorded, in microseconds.
/// Recording is a few comparisons and two relaxed stores on the one thread that owns it (a
/// worker's loop): no syscall, no allocation. Readers in other processes see each value whole.
public struct DurationHistogram {
    /// The buckets' upper bounds in nanoseconds; one more bucket, last, counts what is longer.
    public static let boundsNanos: [Int64] = [
        100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000,
        100_000_000, 250_000_000, 500_000_000, 1_000_000_000, 2_500_000_000, 5_000_000_000, 10_000_000_000,
    ]
    /// Counters a histogram takes: one per bucket, the overflow bucket, the sum.
    public static let width = boundsNanos.count + 2

    /// `width` counters: bucket counts (not cumulative), then the sum in µs; nil records nowhere.
    let base: UnsafeMutablePointer<UInt64>?

    /// A histogram over `width` counters at `base` (nil: one that records nowhere).
    public init(base: UnsafeMutablePointer<UInt64>?) { self.base = base }

    /// Counts one duration of `nanos` nanoseconds (negative counts as 0).
    @inline(__always)
    public func record(nanos: Int64) { record(nanos: nanos, count: 1) }

    /// Counts `count` durations of `nanos` nanoseconds each.
    @inline(__always)
    public func record(nanos: Int64, count: UInt64) {
        guard let base, count > 0 else { return }
        var i = 0
        let bounds = Self.boundsNanos
        while i < bounds.count && nanos > bounds[i] { i += 1 }
        gnet_counter_add(base + i, count)
        gnet_counter_add(base + bounds.count + 1, UInt64(max(0, nanos) / 1000) &* count)
    }

    /// Bucket counts (not cumulative, the overflow bucket last) and the sum in microseconds,
    /// as stored at `base`.
    public static func read(_ base: UnsafePointer<UInt64>) -> (buckets: [UInt64], sumMicros: UInt64) {
        ((0...boundsNanos.count).map { gnet_counter_load(base + $0) }, gnet_counter_load(base + boundsNanos.count + 1))
    }
}
