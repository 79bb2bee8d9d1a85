/// Builds the node tree of a configuration file from libyaml's events, refusing what the
/// configuration does not take, each with its place:
/// - aliases (`*name`): a configuration repeats a value instead (anchors, `&name`, are
///   allowed and ignored, so a file that only names a node still loads). This also rules out
///   alias bombs: the tree is never larger than the text.
/// - more than one document in the file;
/// - collections nested deeper than `maxDepth`, before they cost stack;
/// - a mapping key that is not a scalar, or a key given twice in one mapping.
/// Tags (`!!str`) are ignored, as the decoder always did: a scalar's type comes from its
/// style and text (`YAMLScalars`).
struct YAMLComposer: ~Copyable {
    /// Collections nested deeper than this are refused.
    static let maxDepth = 64

    private var events: YAMLEventParser

    private init(_ events: consuming YAMLEventParser) { self.events = events }

    /// The document's root node; nil for a file with no document (empty, or only comments).
    static func compose(_ text: String) throws(YAMLError) -> YAMLNode? {
        guard let parser = YAMLEventParser(text) else {
            throw YAMLError(message: "YAML: libyaml cannot allocate a parser", mark: nil, path: [])
        }
        var composer = YAMLComposer(parser)
        return try composer.stream()
    }

    private mutating func stream() throws(YAMLError) -> YAMLNode? {
        guard case .streamStart = try events.next() else { throw unexpected("the start of the stream") }
        switch try events.next() {
        case .streamEnd:
            return nil
        case .documentStart:
            let root = try node(try events.next(), depth: 0, path: [])
            guard case .documentEnd = try events.next() else { throw unexpected("the end of the document") }
            switch try events.next() {
            case .streamEnd: return root
            case .documentStart(let mark):
                throw YAMLError(message: "YAML: a second document (---) in the file; a configuration is one document", mark: mark, path: [])
            default: throw unexpected("the end of the stream")
            }
        default:
            throw unexpected("a document")
        }
    }

    private func unexpected(_ what: String) -> YAMLError {
        YAMLError(message: "YAML: libyaml's events are out of order (expected \(what))", mark: nil, path: [])
    }

    /// The node that `event` starts, with everything in it.
    private mutating func node(_ event: YAMLEvent, depth: Int, path: [PathStep]) throws(YAMLError) -> YAMLNode {
        switch event {
        case .scalar(let text, let plain, let mark):
            return YAMLNode(content: .scalar(text, plain: plain), mark: mark)
        case .alias(let name, let mark):
            throw YAMLError(message: "YAML: aliases (*\(name.prefix(64))) are not supported; repeat the value", mark: mark, path: path)
        case .sequenceStart(let mark):
            try checkDepth(depth, mark, path)
            var items: [YAMLNode] = []
            while true {
                let next = try events.next()
                if case .sequenceEnd = next { return YAMLNode(content: .sequence(items), mark: mark) }
                items.append(try node(next, depth: depth + 1, path: path + [.index(items.count)]))
            }
        case .mappingStart(let mark):
            try checkDepth(depth, mark, path)
            var mapping = YAMLMapping(entries: [], mark: mark)
            var keys: Set<String> = []
            while true {
                let next = try events.next()
                if case .mappingEnd = next { return YAMLNode(content: .mapping(mapping), mark: mark) }
                let keyNode = try node(next, depth: depth + 1, path: path)
                guard let key = keyNode.scalarText else {
                    throw YAMLError(message: "YAML: a key must be a plain string, not a list or mapping", mark: keyNode.mark, path: path)
                }
                guard keys.insert(key).inserted else {
                    throw YAMLError(message: "key given twice", mark: keyNode.mark, path: path + [.key(key)])
                }
                let value = try node(try events.next(), depth: depth + 1, path: path + [.key(key)])
                mapping.entries.append(.init(key: key, keyMark: keyNode.mark, value: value))
            }
        default:
            throw unexpected("a node")
        }
    }

    private func checkDepth(_ depth: Int, _ mark: YAMLMark, _ path: [PathStep]) throws(YAMLError) {
        guard depth < Self.maxDepth else {
            throw YAMLError(message: "YAML: lists and mappings nested deeper than \(Self.maxDepth) levels", mark: mark, path: path)
        }
    }
}
