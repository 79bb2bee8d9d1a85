/// A place in a YAML document: 1-based line and column, as editors count them.
struct YAMLMark: Equatable, Comparable {
    var line: Int
    var column: Int
    static func < (a: YAMLMark, b: YAMLMark) -> Bool { (a.line, a.column) < (b.line, b.column) }
}

/// One node of a composed YAML document (`YAMLComposer`): what the configuration decoder reads.
/// Aliases never appear (the composer refuses them), mapping keys are scalars and unique.
struct YAMLNode {
    /// What the node holds.
    enum Content {
        /// A scalar's text; `plain` when unquoted and not a block scalar (only plain scalars
        /// can be numbers, booleans or null).
        case scalar(String, plain: Bool)
        /// A mapping, in document order.
        case mapping(YAMLMapping)
        /// A sequence, in document order.
        case sequence([YAMLNode])
    }

    let content: Content
    /// Where the node starts.
    let mark: YAMLMark

    /// The scalar's text, whatever its style; nil for a collection.
    var scalarText: String? {
        if case .scalar(let s, _) = content { return s }
        return nil
    }
}

/// A mapping's entries in document order, with each key's place.
struct YAMLMapping {
    /// One `key: value`.
    struct Entry {
        let key: String
        let keyMark: YAMLMark
        let value: YAMLNode
    }

    var entries: [Entry]
    /// Where the mapping starts (its first key, for a block mapping).
    let mark: YAMLMark

    /// The value of `key`, if the mapping has it.
    subscript(key: String) -> YAMLNode? { entries.first { $0.key == key }?.value }
}

/// A document that is not YAML, or is YAML the configuration does not take (aliases, more than
/// one document, nesting too deep, a key given twice), with where it is.
struct YAMLError: Error {
    let message: String
    /// nil only for a failure with no place (libyaml out of memory).
    let mark: YAMLMark?
    /// The key path to the problem, when known ("services[0]").
    let path: [PathStep]
}
