import CYAML

/// One event of libyaml's parser, copied out of libyaml's structures.
enum YAMLEvent {
    case streamStart, streamEnd
    case documentStart(YAMLMark), documentEnd
    /// `*name`.
    case alias(String, YAMLMark)
    case scalar(String, plain: Bool, YAMLMark)
    case sequenceStart(YAMLMark), sequenceEnd
    case mappingStart(YAMLMark), mappingEnd
}

/// libyaml's event parser (yaml_parser_parse) over a copy of a text: owns the parser and the
/// copy, and frees both when it goes, on every path. Events are copied into `YAMLEvent` and
/// libyaml's freed at once.
struct YAMLEventParser: ~Copyable {
    private let parser: UnsafeMutablePointer<yaml_parser_t>
    /// libyaml reads the text in place: it must outlive the parser.
    private let input: UnsafeMutableBufferPointer<UInt8>

    /// A parser over `text`; nil when libyaml cannot allocate one.
    init?(_ text: String) {
        // Everything that can fail happens before `self` is whole, so a failure frees here and
        // `deinit` only ever sees an initialized parser.
        let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
        guard yaml_parser_initialize(parser) == 1 else {
            parser.deallocate()
            return nil
        }
        let input = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(text.utf8.count, 1))
        _ = input.initialize(from: text.utf8)
        yaml_parser_set_input_string(parser, input.baseAddress, text.utf8.count)
        self.parser = parser
        self.input = input
    }

    deinit {
        yaml_parser_delete(parser)
        parser.deallocate()
        input.deallocate()
    }

    /// The next event, or libyaml's error with its place.
    mutating func next() throws(YAMLError) -> YAMLEvent {
        var event = yaml_event_t()
        guard yaml_parser_parse(parser, &event) == 1 else { throw failure() }
        defer { yaml_event_delete(&event) }
        let mark = Self.mark(event.start_mark)
        switch event.type {
        case YAML_STREAM_START_EVENT: return .streamStart
        case YAML_STREAM_END_EVENT: return .streamEnd
        case YAML_DOCUMENT_START_EVENT: return .documentStart(mark)
        case YAML_DOCUMENT_END_EVENT: return .documentEnd
        case YAML_ALIAS_EVENT: return .alias(Self.text(event.data.alias.anchor), mark)
        case YAML_SCALAR_EVENT:
            let s = event.data.scalar
            let value = s.value.map { String(decoding: UnsafeBufferPointer(start: $0, count: s.length), as: UTF8.self) } ?? ""
            return .scalar(value, plain: s.style == YAML_PLAIN_SCALAR_STYLE, mark)
        case YAML_SEQUENCE_START_EVENT: return .sequenceStart(mark)
        case YAML_SEQUENCE_END_EVENT: return .sequenceEnd
        case YAML_MAPPING_START_EVENT: return .mappingStart(mark)
        case YAML_MAPPING_END_EVENT: return .mappingEnd
        default: throw YAMLError(message: "YAML: an event libyaml should not produce (\(event.type.rawValue))", mark: mark, path: [])
        }
    }

    private static func mark(_ m: yaml_mark_t) -> YAMLMark { YAMLMark(line: m.line + 1, column: m.column + 1) }

    private static func text(_ p: UnsafeMutablePointer<yaml_char_t>?) -> String {
        p.map { String(cString: UnsafePointer($0)) } ?? ""
    }

    /// libyaml's problem, worded as it is ("did not find expected key"), with the construct
    /// it was reading and where that started ("while parsing a block mapping that starts at
    /// 1:1"), at the problem's place; a reader error (bad bytes) is placed from its byte offset.
    private func failure() -> YAMLError {
        let p = parser.pointee
        let problem = p.problem.map { String(cString: $0) } ?? "unknown problem"
        switch p.error {
        case YAML_MEMORY_ERROR:
            return YAMLError(message: "YAML: out of memory", mark: nil, path: [])
        case YAML_READER_ERROR:
            let value = p.problem_value == -1 ? "" : " (byte 0x\(String(p.problem_value, radix: 16)))"
            return YAMLError(message: "YAML: \(problem)\(value)", mark: place(ofOffset: p.problem_offset), path: [])
        default:
            var message = "YAML: \(problem)"
            if let context = p.context.map({ String(cString: $0) }) {
                let at = Self.mark(p.context_mark)
                message += " (\(context) that starts at \(at.line):\(at.column))"
            }
            return YAMLError(message: message, mark: Self.mark(p.problem_mark), path: [])
        }
    }

    /// Line and column of byte `offset` of the input (columns count characters, as libyaml's).
    private func place(ofOffset offset: Int) -> YAMLMark {
        var line = 1, column = 1
        for b in input.prefix(min(offset, input.count)) {
            if b == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if b & 0xC0 != 0x80 {
                column += 1
            }
        }
        return YAMLMark(line: line, column: column)
    }
}
