/// What a loop timer does when it fires.
enum TimerEvent {
    /// The handler's ticker.
    case tick
    /// Check a connection for idleness (ignored if the slot was reused since).
    case idleCheck(ConnID)
    /// A closing connection's flush deadline.
    case closeDeadline(ConnID)
    /// A dial's connect deadline.
    case connectDeadline(ConnID)
    /// Start accepting again on a listener paused after EMFILE/ENFILE.
    case resumeAccept(Int)
    /// A user's one-shot timer.
    case run(() -> Void)
}

/// A binary min-heap of timers keyed by monotonic deadline (ns); ties fire in insertion order.
/// Cancelling is lazy: events carry connection ids and are ignored when stale.
struct TimerQueue {
    private struct Entry {
        var deadline: Int64
        var sequence: UInt64
        var event: TimerEvent
        @inline(__always) func before(_ o: Entry) -> Bool {
            deadline < o.deadline || (deadline == o.deadline && sequence < o.sequence)
        }
    }
    private var heap: [Entry] = []
    private var sequence: UInt64 = 0
    /// While the loop runs due timers: the earliest deadline a timer armed now may have. A timer
    /// that re-arms itself at or before the present (a deadline already passed, a zero delay)
    /// would otherwise be due again at once and the loop would run it forever; held back to
    /// this floor, it fires again only after real time has passed, one poll later.
    var floor: Int64 = .min

    init() { heap.reserveCapacity(1024) }

    var isEmpty: Bool { heap.isEmpty }
    var count: Int { heap.count }
    /// The earliest deadline, if any.
    /// (`heap[0]`, not `heap.first`: unspecialized in a debug build, `first` copies the entry
    /// through a heap-allocated temporary on every turn of the loop.)
    var nextDeadline: Int64? { heap.isEmpty ? nil : heap[0].deadline }

    mutating func schedule(at deadline: Int64, _ event: TimerEvent) {
        sequence &+= 1
        heap.append(Entry(deadline: deadline < floor ? floor : deadline, sequence: sequence, event: event))
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard heap[i].before(heap[parent]) else { break }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    /// Removes and returns the earliest event if it is due at `now`.
    mutating func popDue(now: Int64) -> TimerEvent? {
        guard !heap.isEmpty, heap[0].deadline <= now else { return nil }
        let first = heap[0]
        let last = heap.removeLast()
        if heap.isEmpty { return first.event }
        heap[0] = last
        var i = 0
        let n = heap.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < n && heap[l].before(heap[m]) { m = l }
            if r < n && heap[r].before(heap[m]) { m = r }
            if m == i { break }
            heap.swapAt(i, m)
            i = m
        }
        return first.event
    }

    mutating func removeAll() { heap.removeAll() }
}
