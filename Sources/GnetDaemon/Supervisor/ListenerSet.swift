#if canImport(Glibc)
import Glibc
#endif
import Gnet

/// The listening sockets the supervisor holds for its whole life, per address.
///
/// TCP and UDP addresses get one `SO_REUSEPORT` socket per worker, so the kernel spreads
/// connections with no accept lock; Unix addresses (which cannot share a path) and sockets
/// passed by systemd get one socket that every worker watches with `EPOLLEXCLUSIVE`. Linux drops
/// the accept queue of a closed reuseport socket, so a socket is never closed while its address
/// stays configured: when workers shrink, worker i of N takes sockets i, i+N, …; when they grow,
/// more are bound.
final class ListenerSet {
    /// What a socket is bound for: the address, plus, for port 0 (each such address gets a port of
    /// its own), the service and position that asked for it.
    struct Key: Hashable, CustomStringConvertible {
        let address: NetworkAddress
        let owner: String?
        var description: String { address.description }
    }

    struct Entry {
        var fds: [Int32]
        /// One socket shared by all workers.
        let shared: Bool
        /// Passed in by systemd: never closed or unlinked by us.
        let adopted: Bool
        /// The Unix socket file we bound: removed when the address goes, if still ours.
        var file: SocketFile? = nil
    }

    private(set) var entries: [Key: Entry] = [:]

    /// Sockets passed by systemd, by the service name they were passed for.
    var adoptedByService: [String: [(fd: Int32, address: NetworkAddress)]] = [:]

    /// The addresses a service is served on: the adopted sockets when systemd passed some for
    /// its name, else its configured addresses.
    func keys(for service: ServiceConfig) throws(GnetError) -> [Key] {
        if let adopted = adoptedByService[service.name] { return adopted.map { Key(address: $0.address, owner: nil) } }
        var out: [Key] = []
        for (j, text) in service.listen.enumerated() {
            let a = try NetworkAddress(parsing: text)
            out.append(Key(address: a, owner: a.network != .unix && a.port == 0 ? "\(service.name)#\(j)" : nil))
        }
        return out
    }

    /// Binds whatever `config` with `workers` workers needs and is not bound yet. Returns what
    /// was bound now, so a failed reload can give it back with `rollback`. Every address new
    /// to the set is first checked to be nobody else's (`AddressInUse` otherwise), before any
    /// is bound.
    func prepare(_ config: DaemonConfig, workers: Int) throws -> [Key: [Int32]] {
        for service in config.services where adoptedByService[service.name] == nil {
            for key in try keys(for: service) where entries[key] == nil && key.owner == nil { try claim(key.address) }
        }
        var added: [Key: [Int32]] = [:]
        do throws(GnetError) {
            for service in config.services {
                if let adopted = adoptedByService[service.name] {
                    for a in adopted where entries[Key(address: a.address, owner: nil)] == nil {
                        entries[Key(address: a.address, owner: nil)] = Entry(fds: [a.fd], shared: true, adopted: true)
                    }
                    continue
                }
                for key in try keys(for: service) {
                    let address = key.address
                    let shared = address.network == .unix
                    var entry = entries[key] ?? Entry(fds: [], shared: shared, adopted: false)
                    let want = shared ? 1 : workers
                    var options = Options()
                    options.reusePort = !shared
                    while entry.fds.count < want {
                        // Port 0 binds once; the extra reuseport sockets must share the port it got.
                        var target = address
                        if address.port == 0, let first = entry.fds.first, let port = boundPort(first) {
                            target = NetworkAddress(address.network, host: address.host, port: port)
                        }
                        let l = try Listener.bind(target, options: options)
                        entry.fds.append(l.fd)
                        if entry.file == nil { entry.file = l.socketFile }
                        added[key, default: []].append(l.fd)
                    }
                    entries[key] = entry
                }
            }
        } catch {
            rollback(added)
            throw error
        }
        return added
    }

    /// Closes sockets bound by a `prepare` whose reload failed.
    func rollback(_ added: [Key: [Int32]]) {
        for (key, fds) in added {
            guard var e = entries[key] else { continue }
            for fd in fds { close(fd) }
            e.fds.removeAll { fds.contains($0) }
            if e.fds.isEmpty {
                entries[key] = nil
                e.file?.remove()
            } else {
                entries[key] = e
            }
        }
    }

    /// Closes the sockets of addresses `config` no longer uses.
    func retainOnly(_ config: DaemonConfig) {
        var keep: Set<Key> = []
        for s in config.services { if let k = try? keys(for: s) { keep.formUnion(k) } }
        for (key, e) in entries where !keep.contains(key) {
            if !e.adopted {
                for fd in e.fds { close(fd) }
                e.file?.remove()
            }
            entries[key] = nil
        }
    }

    /// Worker `index` of `count`: its sockets for `address` (i, i+N, …; the shared one).
    func sockets(for key: Key, worker index: Int, of count: Int) -> (fds: [Int32], shared: Bool) {
        guard let e = entries[key] else { return ([], false) }
        if e.shared { return (e.fds, true) }
        return (stride(from: index, to: e.fds.count, by: count).map { e.fds[$0] }, false)
    }

    /// Closes everything (at exit).
    func closeAll() {
        for (_, e) in entries where !e.adopted {
            for fd in e.fds { close(fd) }
            e.file?.remove()
        }
        entries = [:]
    }

    /// The sockets as a re-executing supervisor hands them over: every entry, and the sockets
    /// systemd passed.
    func handoff() -> (listeners: [ReexecHandoff.ListenerEntry], passed: [ReexecHandoff.PassedSocket]) {
        let listeners = entries.map { key, e in
            ReexecHandoff.ListenerEntry(address: key.address.description, owner: key.owner, fds: e.fds, shared: e.shared,
                                        adopted: e.adopted, socketFile: e.file?.path)
        }
        let passed = adoptedByService.flatMap { service, list in
            list.map { ReexecHandoff.PassedSocket(service: service, fd: $0.fd, address: $0.address.description) }
        }
        return (listeners, passed)
    }

    /// Takes over the sockets of a handoff: they are this daemon's already, bound by the image
    /// before the exec, so nothing is bound or probed.
    func adopt(_ listeners: [ReexecHandoff.ListenerEntry], passed: [ReexecHandoff.PassedSocket]) throws(GnetError) {
        for p in passed { adoptedByService[p.service, default: []].append((p.fd, try NetworkAddress(parsing: p.address))) }
        for l in listeners {
            let key = Key(address: try NetworkAddress(parsing: l.address), owner: l.owner)
            entries[key] = Entry(fds: l.fds, shared: l.shared, adopted: l.adopted, file: l.socketFile.flatMap { SocketFile(boundAt: $0) })
        }
    }

    /// Throws `AddressInUse` when another process serves `address`: a Unix path someone accepts
    /// on (a stale file is fine: bind replaces it), a TCP or UDP address a socket of another
    /// process is bound to. Sockets of this daemon (a new specific address under a wildcard it
    /// already holds) do not count.
    private func claim(_ address: NetworkAddress) throws {
        if address.network == .unix {
            guard SocketFile.isServed(address.path) else { return }
            throw AddressInUse(address: address.description, holders: SocketHolders.describe(SocketHolders.pids(holding: address)))
        }
        guard try Listener.isTaken(address, options: Options()) else { return }
        let holders = SocketHolders.pids(holding: address)
        if !holders.isEmpty && holders.allSatisfy(SocketHolders.isThisDaemon) { return }
        throw AddressInUse(address: address.description, holders: SocketHolders.describe(holders))
    }

    private func boundPort(_ fd: Int32) -> Int? {
        SocketAddress.local(of: fd)?.port
    }

    /// The addresses actually bound, ports filled in (for `status`).
    func boundAddresses(for service: ServiceConfig) -> [String] {
        guard let keys = try? keys(for: service) else { return [] }
        return keys.map { k in
            let a = k.address
            guard a.network != .unix, let fd = entries[k]?.fds.first, let port = SocketAddress.local(of: fd)?.port else { return a.description }
            return NetworkAddress(a.network, host: a.host, port: port).description
        }
    }
}
