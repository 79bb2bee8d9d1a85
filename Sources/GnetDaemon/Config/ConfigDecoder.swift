/// Decodes a `Decodable` from a YAML node tree (`YAMLComposer`'s), recording which keys each mapping was asked
/// for, so that after decoding every key nobody asked for can be reported as unknown, where it
/// stands (a typo never falls back to a default). Types decode as with any `Decoder`; a
/// service's own settings decode from the same mapping as the keys every service has, so their
/// keys count as asked too. Failures are `DecodingError`s with the coding path, which the loader
/// locates in the document.
struct ConfigDecoder {
    /// The keys asked of each mapping, by its path ("services[0].codec").
    final class Record {
        var asked: [String: (node: YAMLMapping, path: [CodingKey], keys: Set<String>)] = [:]
    }

    let record = Record()
    var userInfo: [CodingUserInfoKey: Any] = [:]

    func decode<T: Decodable>(_ type: T.Type, from node: YAMLNode) throws -> T {
        try T(from: NodeDecoder(node: node, codingPath: [], record: record, userInfo: userInfo))
    }

    /// The first key (in document order) of a decoded mapping that nobody asked for: its path
    /// and the keys that mapping would take.
    func firstUnknownKey() -> (path: [CodingKey], key: String, mark: YAMLMark?, allowed: [String])? {
        for (_, entry) in record.asked.sorted(by: { $0.value.node.mark < $1.value.node.mark }) {
            for e in entry.node.entries where !entry.keys.contains(e.key) {
                return (entry.path, e.key, e.keyMark, entry.keys.sorted())
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
    let node: YAMLNode
    let codingPath: [CodingKey]
    let record: ConfigDecoder.Record
    let userInfo: [CodingUserInfoKey: Any]

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        // Keys are strings and unique: the composer refused anything else where it stood.
        guard case .mapping(let mapping) = node.content else {
            throw DecodingError.typeMismatch([String: Any].self, .init(codingPath: codingPath, debugDescription: "expected a mapping"))
        }
        let at = render(codingPath)
        if record.asked[at] == nil { record.asked[at] = (mapping, codingPath, []) }
        return KeyedDecodingContainer(MappingContainer<Key>(mapping: mapping, decoder: self))
    }

    func unkeyedContainer() throws -> UnkeyedDecodingContainer {
        guard case .sequence(let items) = node.content else {
            throw DecodingError.typeMismatch([Any].self, .init(codingPath: codingPath, debugDescription: "expected a list"))
        }
        return SequenceContainer(items: items, decoder: self)
    }

    func singleValueContainer() throws -> SingleValueDecodingContainer { ScalarContainer(decoder: self) }

    func child(_ node: YAMLNode, _ key: CodingKey) -> NodeDecoder {
        NodeDecoder(node: node, codingPath: codingPath + [key], record: record, userInfo: userInfo)
    }

    func ask(_ key: String) { record.asked[render(codingPath)]?.keys.insert(key) }
}

private struct MappingContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let mapping: YAMLMapping
    let decoder: NodeDecoder
    var codingPath: [CodingKey] { decoder.codingPath }
    var allKeys: [Key] { mapping.entries.compactMap { Key(stringValue: $0.key) } }

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
        return YAMLScalars.isNull(node)
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try T(from: value(key)) }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        decoder.ask(key.stringValue)
        guard let node = mapping[key.stringValue], !YAMLScalars.isNull(node) else { return nil }
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
    let items: [YAMLNode]
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
        guard !isAtEnd, YAMLScalars.isNull(items[currentIndex]) else { return false }
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

    func decodeNil() -> Bool { YAMLScalars.isNull(decoder.node) }

    /// The scalar's value by `construct` (`YAMLScalars`' rules: numbers only from plain
    /// scalars); a type mismatch for a collection or a text that is not one.
    private func scalar<T>(_ type: T.Type, _ what: String, plainOnly: Bool = true, _ construct: (String) -> T?) throws -> T {
        guard case .scalar(let text, let plain) = decoder.node.content, plain || !plainOnly, let v = construct(text) else {
            throw DecodingError.typeMismatch(type, .init(codingPath: codingPath, debugDescription: "expected \(what)"))
        }
        return v
    }

    private func integer<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
        try scalar(type, "a whole number") { YAMLScalars.integer($0, as: type) }
    }

    func decode(_ type: Bool.Type) throws -> Bool { try scalar(Bool.self, "true or false", plainOnly: false, YAMLScalars.bool) }
    func decode(_ type: String.Type) throws -> String { try scalar(String.self, "a string", plainOnly: false) { $0 } }
    func decode(_ type: Double.Type) throws -> Double { try scalar(Double.self, "a number") { YAMLScalars.floatingPoint($0, as: Double.self) } }
    func decode(_ type: Float.Type) throws -> Float { try scalar(Float.self, "a number") { YAMLScalars.floatingPoint($0, as: Float.self) } }
    func decode(_ type: Int.Type) throws -> Int { try integer(Int.self) }
    func decode(_ type: Int8.Type) throws -> Int8 { try integer(Int8.self) }
    func decode(_ type: Int16.Type) throws -> Int16 { try integer(Int16.self) }
    func decode(_ type: Int32.Type) throws -> Int32 { try integer(Int32.self) }
    func decode(_ type: Int64.Type) throws -> Int64 { try integer(Int64.self) }
    func decode(_ type: UInt.Type) throws -> UInt { try integer(UInt.self) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(UInt8.self) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(UInt16.self) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(UInt32.self) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(UInt64.self) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try T(from: decoder) }
}
