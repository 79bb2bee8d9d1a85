import Foundation
import Yams

/// Decodes a `Decodable` from a YAML node tree, recording which keys each mapping was asked
/// for, so that after decoding every key nobody asked for can be reported as unknown, where it
/// stands (a typo never falls back to a default). Types decode as with any `Decoder`; a
/// service's own settings decode from the same mapping as the keys every service has, so their
/// keys count as asked too. Failures are `DecodingError`s with the coding path, which the loader
/// locates in the document.
struct ConfigDecoder {
    /// The keys asked of each mapping, by its path ("services[0].codec").
    final class Record {
        var asked: [String: (node: Node.Mapping, path: [CodingKey], keys: Set<String>)] = [:]
    }

    let record = Record()
    var userInfo: [CodingUserInfoKey: Any] = [:]

    func decode<T: Decodable>(_ type: T.Type, from node: Node) throws -> T {
        try T(from: NodeDecoder(node: node, codingPath: [], record: record, userInfo: userInfo))
    }

    /// The first key (in document order) of a decoded mapping that nobody asked for: its path
    /// and the keys that mapping would take.
    func firstUnknownKey() -> (path: [CodingKey], key: String, mark: Mark?, allowed: [String])? {
        for (_, entry) in record.asked.sorted(by: { ($0.value.node.mark?.line ?? 0, $0.value.node.mark?.column ?? 0) < ($1.value.node.mark?.line ?? 0, $1.value.node.mark?.column ?? 0) }) {
            for (k, _) in entry.node {
                guard let key = k.string, !entry.keys.contains(key) else { continue }
                return (entry.path, key, k.mark, entry.keys.sorted())
            }
        }
        return nil
    }
}

/// A coding key made from a string or an index.
struct PathKey: CodingKey {
    let stringValue: String
    let intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue; intValue = nil }
    init(intValue: Int) { stringValue = "\(intValue)"; self.intValue = intValue }
}

/// Renders a coding path the way errors show it: `services[1].codec.delimiter`.
func render(_ path: [CodingKey]) -> String {
    var out = ""
    for k in path {
        if let i = k.intValue { out += "[\(i)]" } else { out += (out.isEmpty ? "" : ".") + k.stringValue }
    }
    return out
}

private struct NodeDecoder: Decoder {
    let node: Node
    let codingPath: [CodingKey]
    let record: ConfigDecoder.Record
    let userInfo: [CodingUserInfoKey: Any]

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .mapping(let mapping) = node else {
            throw DecodingError.typeMismatch([String: Any].self, .init(codingPath: codingPath, debugDescription: "expected a mapping"))
        }
        var seen: Set<String> = []
        for (k, _) in mapping {
            guard let key = k.string else {
                throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "keys must be plain strings"))
            }
            if !seen.insert(key).inserted {
                throw DecodingError.dataCorrupted(.init(codingPath: codingPath + [PathKey(stringValue: key)], debugDescription: "key given twice"))
            }
        }
        let at = render(codingPath)
        if record.asked[at] == nil { record.asked[at] = (mapping, codingPath, []) }
        return KeyedDecodingContainer(MappingContainer<Key>(mapping: mapping, decoder: self))
    }

    func unkeyedContainer() throws -> UnkeyedDecodingContainer {
        guard case .sequence(let sequence) = node else {
            throw DecodingError.typeMismatch([Any].self, .init(codingPath: codingPath, debugDescription: "expected a list"))
        }
        return SequenceContainer(items: Array(sequence), decoder: self)
    }

    func singleValueContainer() throws -> SingleValueDecodingContainer { ScalarContainer(decoder: self) }

    func child(_ node: Node, _ key: CodingKey) -> NodeDecoder {
        NodeDecoder(node: node, codingPath: codingPath + [key], record: record, userInfo: userInfo)
    }

    func ask(_ key: String) { record.asked[render(codingPath)]?.keys.insert(key) }
}

private struct MappingContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let mapping: Node.Mapping
    let decoder: NodeDecoder
    var codingPath: [CodingKey] { decoder.codingPath }
    var allKeys: [Key] { mapping.keys.compactMap { $0.string.flatMap(Key.init(stringValue:)) } }

    func contains(_ key: Key) -> Bool {
        decoder.ask(key.stringValue)
        return mapping[key.stringValue] != nil
    }

    private func value(_ key: Key) throws -> NodeDecoder {
        decoder.ask(key.stringValue)
        guard let node = mapping[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing key \"\(key.stringValue)\""))
        }
        return decoder.child(node, key)
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        decoder.ask(key.stringValue)
        guard let node = mapping[key.stringValue] else { return true }
        return isNull(node)
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try T(from: value(key)) }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        decoder.ask(key.stringValue)
        guard let node = mapping[key.stringValue], !isNull(node) else { return nil }
        return try T(from: decoder.child(node, key))
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try value(key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> UnkeyedDecodingContainer { try value(key).unkeyedContainer() }
    func superDecoder() throws -> Decoder { decoder }
    func superDecoder(forKey key: Key) throws -> Decoder { try value(key) }
}

private struct SequenceContainer: UnkeyedDecodingContainer {
    let items: [Node]
    let decoder: NodeDecoder
    var currentIndex = 0
    var codingPath: [CodingKey] { decoder.codingPath }
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    private mutating func next() throws -> NodeDecoder {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath, debugDescription: "the list is shorter than expected"))
        }
        defer { currentIndex += 1 }
        return decoder.child(items[currentIndex], PathKey(intValue: currentIndex))
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, isNull(items[currentIndex]) else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try T(from: next()) }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next().container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer() throws -> UnkeyedDecodingContainer { try next().unkeyedContainer() }
    mutating func superDecoder() throws -> Decoder { try next() }
}

private struct ScalarContainer: SingleValueDecodingContainer {
    let decoder: NodeDecoder
    var codingPath: [CodingKey] { decoder.codingPath }

    func decodeNil() -> Bool { isNull(decoder.node) }

    private func scalar<T: ScalarConstructible>(_ type: T.Type, _ what: String) throws -> T {
        guard case .scalar(let s) = decoder.node, let v = T.construct(from: s) else {
            throw DecodingError.typeMismatch(type, .init(codingPath: codingPath, debugDescription: "expected \(what)"))
        }
        return v
    }

    func decode(_ type: Bool.Type) throws -> Bool { try scalar(Bool.self, "true or false") }
    func decode(_ type: String.Type) throws -> String { try scalar(String.self, "a string") }
    func decode(_ type: Double.Type) throws -> Double { try scalar(Double.self, "a number") }
    func decode(_ type: Float.Type) throws -> Float { try scalar(Float.self, "a number") }
    func decode(_ type: Int.Type) throws -> Int { try scalar(Int.self, "a whole number") }
    func decode(_ type: Int8.Type) throws -> Int8 { try scalar(Int8.self, "a whole number") }
    func decode(_ type: Int16.Type) throws -> Int16 { try scalar(Int16.self, "a whole number") }
    func decode(_ type: Int32.Type) throws -> Int32 { try scalar(Int32.self, "a whole number") }
    func decode(_ type: Int64.Type) throws -> Int64 { try scalar(Int64.self, "a whole number") }
    func decode(_ type: UInt.Type) throws -> UInt { try scalar(UInt.self, "a whole number") }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try scalar(UInt8.self, "a whole number") }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try scalar(UInt16.self, "a whole number") }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try scalar(UInt32.self, "a whole number") }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try scalar(UInt64.self, "a whole number") }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try T(from: decoder) }
}

/// A YAML null: `~`, `null` or nothing, unquoted.
private func isNull(_ node: Node) -> Bool {
    guard case .scalar(let s) = node, s.style == .plain else { return false }
    return ["", "~", "null", "Null", "NULL"].contains(s.string)
}
